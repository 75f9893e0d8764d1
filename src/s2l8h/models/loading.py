"""Loading and saving weights without executing foreign code.

Sources ``load_model`` understands:

- our release format: a folder with ``config.json`` (``"format": "s2l8h-model"``) and
  ``model.safetensors``;
- a hub-layout folder (``model.safetensors`` or ``pytorch_model.bin``, state dict keys prefixed
  ``model.`` as in the published releases) or a hub id ``owner/name`` fetched through the
  huggingface_hub cache; the architecture is read off the tensor names and shapes, never from
  code shipped with the weights;
- a single weights file: ``.safetensors``, or a pickle (``.bin``/``.pth``/``.pt``/``.ckpt``) such
  as the paper's training checkpoints (a dict with ``model_state_dict``), opened with
  ``torch.load(weights_only=True)`` only; a Lightning checkpoint of ``s2l8h train`` describes
  its model in its hyperparameters (architecture, config, convention), so it loads alone;
- a registered name (``lite2``, ``lite2.realistic``; :mod:`s2l8h.models.registry`), which
  always means the registry, never a path of that name.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from s2l8h.errors import (
    ModelLoadError,
    OutputError,
    OutputExistsError,
    S2L8HWarning,
    UnknownModelError,
    warn,
)
from s2l8h.models.convention import PUBLISHED_CONVENTION, InputConvention
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.registry import (
    ModelSpec,
    build_network,
    bundled_weights,
    ensemble_names,
    find_spec,
    full_config,
    get_spec,
    is_registered,
    list_models,
)

RELEASE_FORMAT = "s2l8h-model"
RELEASE_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = b"\x80"
_ACCEPTED_FORMATS = ("safetensors (.safetensors) or a PyTorch zip/pickle archive ("
                    + "/".join(PICKLE_SUFFIXES) + ")")
#: Prefix of the network's tensors in a checkpoint of :class:`s2l8h.train.HarmonizerModule`.
CHECKPOINT_PREFIX = "model.network."


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read tensors from a safetensors file or a pickle opened with ``weights_only=True``.

    A pickle may be a plain state dict or a training checkpoint holding one under
    ``model_state_dict`` (the paper's scripts) or ``state_dict`` (Lightning).
    """
    return _read_payload(Path(path))[0]


def read_weights(path: str | os.PathLike[str]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The tensors of a weights file and, for a checkpoint of ``s2l8h train``, the release
    document its hyperparameters describe (else ``None``); a checkpoint's tensors are then
    its network's (keys without the ``model.network.`` prefix)."""
    state, document = _read_payload(Path(path))
    if document is not None:
        state = {key[len(CHECKPOINT_PREFIX):]: value for key, value in state.items()
                 if key.startswith(CHECKPOINT_PREFIX)}
    return state, document


def _weights_format(path: str | os.PathLike[str]) -> str | None:
    """``"safetensors"`` or ``"pytorch"`` by the file's first bytes, else ``None``.

    safetensors: an 8-byte little-endian header length, then the JSON header's ``{``;
    PyTorch: a zip archive (``torch.save``) or a pickle (its protocol byte ``0x80``).
    """
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL):
        return "pytorch"
    if len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "safetensors"
    return None


def _read_payload(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such weights file")
    try:
        kind = _weights_format(path)
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot be read ({error.strerror or error})") from None
    if kind is None:
        raise ModelLoadError(f"{path}: not a weights file (accepted: {_ACCEPTED_FORMATS})")
    if kind == "safetensors":
        try:
            return load_file(path, device="cpu"), None
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({error})") from None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # PyTorch's message advises weights_only=False: never repeat it, name the object only.
        found = re.search(r"GLOBAL ([\w.]*\w)", str(error))
        named = f" ({found.group(1)})" if found else ""
        raise ModelLoadError(
            f"{path}: refused to load: the pickle holds objects other than tensors and plain "
            f"containers{named}, and unpickling them could run arbitrary code"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as error:
        raise ModelLoadError(f"{path}: not a readable PyTorch weights file ({error})") from None
    return _tensors_from_payload(payload, path), _checkpoint_document(payload, path)


def _checkpoint_document(payload: Any, path: Path) -> dict[str, Any] | None:
    """The model a Lightning checkpoint's ``hyper_parameters`` describe (``architecture``,
    ``config``, ``convention``, ``name``; see ``Harmonizer.describe``), as a release
    document; ``None`` for any other payload."""
    if not isinstance(payload, dict):
        return None
    hyperparameters = payload.get("hyper_parameters")
    if not isinstance(hyperparameters, dict) or "architecture" not in hyperparameters:
        return None
    for key in ("config", "convention"):
        if not isinstance(hyperparameters.get(key), dict):
            raise ModelLoadError(f"{path}: the checkpoint's hyperparameters lack {key!r}")
    return {"architecture": hyperparameters["architecture"],
            "config": hyperparameters["config"], "convention": hyperparameters["convention"],
            "name": hyperparameters.get("name"), "provenance": {}, "checkpoint": True}


def _tensors_from_payload(payload: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(payload, dict):
        for key in ("model_state_dict", "state_dict"):
            if isinstance(payload.get(key), dict):
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not payload:
        raise ModelLoadError(f"{path}: holds no state dict (expected a dict of tensors)")
    bad = [key for key, value in payload.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ModelLoadError(f"{path}: entries that are not tensors: {bad[:5]}")
    return dict(payload)


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a common wrapper prefix (``model.``, ``network.``, ``module.``) and map the paper's
    Gaussian head names (``final_mean`` -> ``final``)."""
    for prefix in ("model.", "network.", "module."):
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return {re.sub(r"^final_mean\.", "final.", key): value for key, value in state.items()}


def infer_unet_config(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Read a UNet configuration off its (normalized) state dict's names and shapes."""
    try:
        first = state["encoding_module.0.block.0.weight"]
        final = state["final.weight"]
    except KeyError as missing:
        raise ModelLoadError(f"not a UNet state dict: no tensor {missing}") from None
    depth = len({key.split(".")[1] for key in state if key.startswith("encoding_module.")})
    base = first.shape[0]
    growth = round(math.log2(base))
    if 2**growth != base:
        raise ModelLoadError(f"UNet base width {base} is not a power of two")
    up_mode = "upsample"
    if "decoding_module.0.Upsize.weight" in state:
        up_mode = "upconv"
    elif "decoding_module.0.Upsize.3.weight" in state:
        up_mode = "shuffle"
    attention = "none"
    if any(key.startswith("decoding_module.0.attention_gate.") for key in state):
        width = state["decoding_module.0.conv.block.0.weight"].shape[1]
        top = state["decoding_module.0.Upsize.1.weight" if up_mode == "upsample" else
                    "decoding_module.0.Upsize.3.weight" if up_mode == "shuffle" else
                    "decoding_module.0.Upsize.weight"]
        out_width = top.shape[1] if up_mode == "upconv" else top.shape[0]
        attention = "modified" if width == 3 * out_width else "standard"
    return {
        "in_channels": int(first.shape[1]),
        "out_channels": int(final.shape[0]),
        "depth": depth,
        "growth_factor": growth,
        "up_mode": up_mode,
        "attention": attention,
        "channel_attention": "encoding_module.0.block.4.conv.weight" in state,
        "dropout": 0.0,
        "variance_head": "final_variance.weight" in state,
    }


def load_state_dict_strict(
    network: torch.nn.Module, state: dict[str, torch.Tensor], source: str
) -> None:
    """Load ``state`` into ``network``, failing with the missing/unexpected/mis-shaped keys
    or the tensors that hold NaN or infinite values."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state))
        if state[key].shape != expected[key].shape
    ]
    if missing or unexpected or mis_shaped:
        lines = [f"{source}: weights do not match the architecture"]
        for title, keys in (("missing", missing), ("unexpected", unexpected),
                            ("wrong shape", mis_shaped)):
            if keys:
                more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
                shown = ", ".join(keys[:8]) + more
                lines.append(f"  {title} keys: {shown}")
        raise ModelLoadError("\n".join(lines))
    broken = [key for key, tensor in state.items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        more = f", ... ({len(broken)} in all)" if len(broken) > 4 else ""
        raise ModelLoadError(f"{source}: {len(broken)} of {len(state)} weight tensors hold NaN "
                             f"or infinite values ({', '.join(broken[:4])}{more}): not usable "
                             "weights (from a training run whose loss was not finite?)")
    network.load_state_dict(state, strict=True)


def _read_release_config(folder: Path) -> dict[str, Any] | None:
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        return None
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{config_path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != RELEASE_FORMAT:
        return None  # e.g. a transformers config.json of a hub release: not ours, not needed
    for key in ("architecture", "config", "convention"):
        if key not in document:
            raise ModelLoadError(f"{config_path}: missing key {key!r}")
    return document


def _weights_in(folder: Path) -> Path:
    for name in (WEIGHTS_NAME, PICKLE_WEIGHTS_NAME):
        if (folder / name).is_file():
            return folder / name
    raise ModelLoadError(f"{folder}: no {WEIGHTS_NAME} or {PICKLE_WEIGHTS_NAME} in this folder")


def _assemble(
    state: dict[str, torch.Tensor],
    source: str,
    document: dict[str, Any] | None,
    expect_architecture: tuple[str, dict[str, Any]] | None,
    overrides: dict[str, Any] | None,
) -> Harmonizer:
    state = normalize_keys(state)
    if document is not None:
        architecture = document["architecture"]
        config = dict(document["config"])
        try:
            convention = InputConvention.from_dict(document["convention"])
        except (TypeError, ValueError) as error:
            raise ModelLoadError(f"{source}: bad input convention ({error})") from None
        name = document.get("name")
        provenance = dict(document.get("provenance", {}))
    else:
        architecture = "unet"
        try:
            config = infer_unet_config(state)
        except ModelLoadError as error:
            raise ModelLoadError(
                f"{source}: {error}. Without a config.json beside them, weights load only as "
                "one of the published UNet layouts (read off the tensor names); other "
                "networks (lite, lite2) need the config.json their release holds") from None
        spec = find_spec(architecture, config)
        convention = spec.convention if spec else PUBLISHED_CONVENTION
        name = spec.name if spec else None
        provenance = {}
    if expect_architecture is not None:
        expected_arch, expected_config = expect_architecture
        # Asked for: the model's config with the parameter-free overrides (e.g. glp_window);
        # both sides complete (a field a saved config predates has its default).
        wanted = {**expected_config, **(overrides or {})}
        try:
            saved, wanted = full_config(architecture, config), full_config(expected_arch, wanted)
        except (TypeError, ValueError) as error:
            raise ModelLoadError(f"{source}: bad architecture config ({error})") from None
        # parameter-free fields (dropout rate, calibration factor) do not tell weights apart
        comparable = {**saved, "dropout": wanted.get("dropout", 0.0)}
        if "variance_scale" in wanted:
            comparable["variance_scale"] = wanted["variance_scale"]
        if expected_arch != architecture or comparable != wanted:
            raise ModelLoadError(
                f"{source}: weights are for {architecture} {config}, "
                f"not the requested {expected_arch} {wanted}"
            )
    config.update(overrides or {})
    try:
        network = build_network(architecture, config)
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"{source}: bad architecture config ({error})") from None
    load_state_dict_strict(network, state, source)
    provenance.setdefault("weights", source)
    model = Harmonizer(network, convention, architecture, name=name, provenance=provenance)
    if document is not None and document.get("checkpoint") and model.has_variance_head:
        warn(f"{source}: a training checkpoint, whose variance head is not calibrated (s2l8h "
             "export with the run's --config fits its factor on the validation split): its σ "
             "may be too narrow or too wide", S2L8HWarning)
    return model.eval()


def _hub_offline() -> bool:
    try:
        import huggingface_hub.constants as constants
    except ImportError:  # pragma: no cover
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _hub_reachable(timeout: float = 5.0) -> str | None:
    """``None`` when the hub's host accepts a connection, else why not (one try, no retries:
    huggingface_hub itself retries an unreachable host for about 25 s per file)."""
    import socket
    from urllib.parse import urlparse

    import huggingface_hub.constants as constants

    endpoint = urlparse(getattr(constants, "ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (
        443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"{host} cannot be reached ({error})"
    return None


def _how_to_get(hub_id: str) -> str:
    return (f"On a machine with network access run\n"
            f"  hf download {hub_id}\n"
            f"(huggingface_hub < 0.34: huggingface-cli download {hub_id}) and copy the cache "
            "(HF_HOME) here, or download the repository's files into a folder and pass that "
            "folder instead. Set HF_HUB_OFFLINE=1 to use only the local cache without trying "
            "the network.")


def download_from_hub(hub_id: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Fetch a release's weights through the huggingface_hub cache; return the local file.

    Prefers ``model.safetensors``; falls back to ``pytorch_model.bin``. The local cache is
    looked at first (no network); offline (``HF_HUB_OFFLINE=1`` or the hub unreachable) and
    not cached, or a gated/private repository without access, raises a
    :class:`ModelLoadError` that says what to do.
    """
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        raise ModelLoadError("loading from the hub needs huggingface_hub") from None
    names = (WEIGHTS_NAME, PICKLE_WEIGHTS_NAME)
    for filename in names:  # the cache first: no network, no retries
        try:
            return Path(hf_hub_download(hub_id, filename, cache_dir=cache_dir,
                                        local_files_only=True))
        except (LocalEntryNotFoundError, EntryNotFoundError, OSError, ValueError):
            continue
    if _hub_offline():
        raise ModelLoadError(f"{hub_id}: the weights are not in the local Hugging Face cache "
                             "and HF_HUB_OFFLINE is set, so the hub was not asked.\n"
                             + _how_to_get(hub_id))
    unreachable = _hub_reachable()
    if unreachable is not None:
        raise ModelLoadError(f"{hub_id}: the weights are not in the local Hugging Face cache "
                             f"and the hub is offline: {unreachable}.\n" + _how_to_get(hub_id))
    failures: list[str] = []
    for filename in names:
        try:
            return Path(hf_hub_download(hub_id, filename, cache_dir=cache_dir))
        except GatedRepoError:
            raise ModelLoadError(
                f"{hub_id}: the repository is gated: accept its terms on "
                f"https://huggingface.co/{hub_id} with your account, then log in here "
                "(`hf auth login`, or set HF_TOKEN) and run again") from None
        except RepositoryNotFoundError:
            raise ModelLoadError(
                f"{hub_id}: repository not found, or private and you are not logged in "
                "(`hf auth login`, or set HF_TOKEN)") from None
        except LocalEntryNotFoundError as error:  # a connection failure, not a missing file
            failures.append(f"{filename}: the hub could not be reached ({error})"
                            .splitlines()[0])
            break
        except EntryNotFoundError:
            failures.append(f"{filename}: not in the repository")
        except HfHubHTTPError as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status in (401, 403):
                raise ModelLoadError(
                    f"{hub_id}: the hub refused access (HTTP {status}); the repository may be "
                    f"gated: accept its terms on https://huggingface.co/{hub_id} and log in "
                    "(`hf auth login`, or set HF_TOKEN)") from None
            failures.append(f"{filename}: HTTP {status}: {error}".splitlines()[0])
    raise ModelLoadError(
        f"could not get the weights of {hub_id} from the Hugging Face hub or its local cache "
        f"({'; '.join(failures)}).\n" + _how_to_get(hub_id))


def load_release(spec: ModelSpec, *, cache_dir: str | os.PathLike[str] | None = None,
                 overrides: dict[str, Any] | None = None) -> Harmonizer:
    """Load the weights of a registered release (``get_spec`` of a release or model name):
    its bundled folder, or its hub id through the huggingface_hub cache. The model is named
    after the release (``lite2.realistic``)."""
    if spec.bundled is not None:
        folder = Path(bundled_weights(spec))
        if not (folder / WEIGHTS_NAME).is_file():
            raise ModelLoadError(f"{folder}: the bundled weights of {spec.release!r} are "
                                 "missing")
        model = load_model(folder, overrides=overrides)
    elif spec.hub_id is not None:
        path = download_from_hub(spec.hub_id, cache_dir)
        model = _assemble(read_state_dict(path), f"{spec.hub_id} ({path})", None,
                          (spec.architecture, spec.config), overrides)
    else:
        raise ModelLoadError(f"model {spec.name!r} has no released weights; pass a path")
    model.name = spec.release
    return model


def load_model(
    source: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    expect_architecture: tuple[str, dict[str, Any]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Harmonizer:
    """Load a model from a registered name, a folder, a weights file or a hub id.

    The rule, in this order: a registered name (``lite2``: its default release;
    ``lite2.realistic``: that release) always means the registry, even where a file or
    folder of that name exists (write ``./lite2`` for it); an existing file or folder is
    loaded from disk; ``owner/name`` is a hub id. Anything else is an error
    (:class:`~s2l8h.errors.UnknownModelError`, listing the registered names, for what looks
    like a name). ``expect_architecture`` (``(architecture, config)``) refuses weights of
    another model; ``overrides`` change parameter-free config fields (e.g.
    ``{"dropout": 0.1}`` to run Monte-Carlo dropout on published weights). The model is
    returned in eval mode.
    """
    text = os.fspath(source)
    if is_registered(text):
        return load_release(get_spec(text), cache_dir=cache_dir, overrides=overrides)
    path = Path(text).expanduser()
    if path.is_dir():
        document = _read_release_config(path)
        weights = path / WEIGHTS_NAME if document is not None else _weights_in(path)
        return _assemble(read_state_dict(weights), str(path), document, expect_architecture,
                         overrides)
    if path.is_file():
        state, document = read_weights(path)
        if document is None:
            document = _read_release_config(path.parent)
        return _assemble(state, str(path), document, expect_architecture, overrides)
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        weights = download_from_hub(text, cache_dir)
        return _assemble(read_state_dict(weights), f"{text} ({weights})", None,
                         expect_architecture, overrides)
    if os.sep in text or "/" in text or text.startswith((".", "~")):
        raise ModelLoadError(f"{text}: no such file or folder")
    if "." in text and is_registered(text.partition(".")[0]):
        get_spec(text)  # raises: an unknown release of a registered model, with its releases
    raise UnknownModelError(
        f"{text}: not a registered model (models: {', '.join(list_models())}; releases: "
        f"{', '.join(list_models(releases=True))}; ensembles: {ensemble_names()}), an "
        "existing file or folder, or a hub id owner/name"
    )


def check_release_folder(folder: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """A folder a release may be written into: new, empty, or (with ``overwrite``) holding an
    s2l8h release. A folder with anything else in it (a user's README.md, the current
    directory ...) is refused even with ``overwrite``: a release replaces its README.md."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return folder
    try:
        ours = _read_release_config(folder) is not None
    except ModelLoadError:
        ours = False
    if not ours:
        shown = ", ".join(sorted(path.name for path in folder.iterdir())[:5])
        raise OutputError(f"{folder}: holds files that are not an s2l8h release ({shown}); "
                          "write the release into a new or empty folder")
    if not overwrite:
        raise OutputExistsError(f"{folder}: holds a release already; pass --overwrite to "
                                "replace it")
    return folder


def save_pretrained(
    model: Harmonizer,
    folder: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` in our release format (``config.json`` + ``model.safetensors``).

    Files are written under temporary names and renamed; the folder must be new, empty or
    (with ``overwrite``) an earlier release (:func:`check_release_folder`).
    """
    from s2l8h import __version__

    folder = check_release_folder(folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / CONFIG_NAME, folder / WEIGHTS_NAME]
    document = {
        "format": RELEASE_FORMAT,
        "format_version": RELEASE_FORMAT_VERSION,
        **model.describe(),
        "provenance": {**model.provenance, **(provenance or {}), "s2l8h_version": __version__},
    }
    state = {key: value.detach().cpu().contiguous() for key, value in
             model.network.state_dict().items()}
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".safetensors.tmp", delete=False) as tmp:
        weights_tmp = Path(tmp.name)
    config_tmp = folder / f".{CONFIG_NAME}.tmp"
    try:
        save_file(state, weights_tmp, metadata={"format": RELEASE_FORMAT,
                                                 "architecture": model.architecture})
        config_tmp.write_text(json.dumps(document, indent=2) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(weights_tmp, 0o666 & ~umask)  # NamedTemporaryFile creates 0600
        os.replace(weights_tmp, targets[1])
        os.replace(config_tmp, targets[0])
    finally:
        weights_tmp.unlink(missing_ok=True)
        config_tmp.unlink(missing_ok=True)
    return folder
