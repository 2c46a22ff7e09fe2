"""Loading a causal LM and its tokenizer, from the Hub or a local directory, ready for the lens.

``load_model("gpt2")`` and ``load_model("/path/written/by/save_pretrained")`` go through the same
``transformers`` calls; a failure (no network, no weights, not a causal LM, an architecture the
lens cannot attach to) becomes one :class:`~elens_utils.core.errors.ElensError` that says what to do.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from elens_utils.core.errors import ElensError, first_line
from elens_utils.core.threads import apply_model_threads
from elens_utils.entropy import cpu as entropy_cpu
from elens_utils.lens.adapters import LensParts, LensSpec, check_parity, find_lens_parts
from elens_utils.models.registry import resolve_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from elens_utils.entropy.profiles import Profiles

__all__ = ["LensModel", "load_model", "resolve_device", "resolve_dtype"]

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

# Architectures whose activations overflow float16 (Gemma-2's are known to).
_NO_FP16 = {"gemma2"}
# Architectures whose attention is soft-capped, which only the eager implementation computes.
_EAGER_ATTENTION = {"gemma2"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; otherwise check that the device exists."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, int) and not isinstance(device, bool):  # a GPU index, as torch reads it
        device = f"cuda:{device}"
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ElensError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ElensError(f"Device {device!r} requested but no CUDA GPU is visible: use --device cpu.")
    if dev.type == "meta":
        raise ElensError("Device 'meta' holds no data, so nothing can be computed on it: use 'cpu' or 'cuda'.")
    if dev.type == "cuda":  # checked without creating a CUDA context (a cache hit needs none)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ElensError(
                f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                "cuda:0 and up."
            )
        return dev
    if dev.type == "cpu":
        return dev
    try:  # a device type torch names but this build or machine cannot run (xla, mps, ipu...)
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise ElensError(
            f"Device {device!r} cannot be used here ({_first_line(err)}) Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from err
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device, model_type: str | None = None) -> torch.dtype:
    """``"auto"`` -> bfloat16 on GPU, float32 on CPU; refuse float16 for Gemma-2."""
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype == "auto":
        resolved = torch.bfloat16 if device.type == "cuda" else torch.float32
    elif dtype in DTYPES:
        resolved = DTYPES[dtype]
    else:
        raise ElensError(f"Unknown dtype {dtype!r}: use one of auto, {', '.join(sorted(DTYPES))}.")
    if resolved == torch.float16 and model_type in _NO_FP16:
        raise ElensError(
            f"float16 is not supported for '{model_type}' models: their activations overflow it. "
            "Use --dtype bfloat16 (GPU) or float32."
        )
    return resolved


@dataclass
class LensModel:
    """A causal LM, its tokenizer and the located lens parts.

    Attributes:
        model: the ``transformers`` model, in eval mode, gradients off.
        tokenizer: its tokenizer, padding on the left.
        parts: where the lens attaches (:class:`~elens_utils.lens.adapters.LensParts`).
        name: the Hub id or directory it was loaded from (recorded in profiles).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    parts: LensParts
    name: str

    @property
    def n_layers(self) -> int:
        """Number of decoder blocks L (the lens gives one value per block)."""
        return self.parts.n_layers

    @property
    def device(self) -> torch.device:
        return self.parts.unembed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.parts.unembed.weight.dtype

    @property
    def arch(self) -> str:
        return getattr(self.model.config, "model_type", type(self.model).__name__)

    @property
    def context_length(self) -> int | None:
        """Longest sequence (prompt + generated tokens) the model accepts, if it declares one."""
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def encode(self, prompts: Sequence[str | Sequence[int]], *, fit_context: bool = False) -> list[list[int]]:
        """Token ids of each prompt, special tokens included, checked for emptiness (and, with
        ``fit_context``, against :attr:`context_length`).

        A prompt may be a string or a list of token ids (``[tokenizer.bos_token_id]`` is the
        BOS-only prompt). A string that already starts with the BOS token, for a tokenizer that
        adds one, is not given a second BOS.
        """
        if isinstance(prompts, (str, bytes)):
            raise ElensError("Pass a list of prompts, not a single string: profile(['...']).")
        tok = self.tokenizer
        out = []
        for i, prompt in enumerate(prompts):
            if isinstance(prompt, str):
                ids = list(tok(prompt, add_special_tokens=True)["input_ids"])
                bos = tok.bos_token_id
                if bos is not None and len(ids) >= 2 and ids[0] == ids[1] == bos:
                    ids = ids[1:]
            else:
                ids = [int(t) for t in prompt]
                bad = [t for t in ids if not 0 <= t < self.parts.vocab_size]
                if bad:
                    raise ElensError(
                        f"Prompt {i} has token ids outside the vocabulary [0, {self.parts.vocab_size}): {bad[:5]}."
                    )
            if not ids:
                raise ElensError(
                    f"Prompt {i} is empty: it has no tokens (this tokenizer adds no BOS token). "
                    "Give it some text, or pass token ids, e.g. [tokenizer.bos_token_id] or "
                    "[tokenizer.eos_token_id] for a blank prompt."
                )
            out.append(ids)
        ctx = self.context_length
        if fit_context and ctx is not None:
            for i, ids in enumerate(out):
                if len(ids) > ctx:
                    raise ElensError(f"Prompt {i} has {len(ids)} tokens; the model takes at most {ctx}.")
        return out

    def check_coverage(self, encoded: Sequence[Sequence[int]], max_unknown: float = 0.5) -> None:
        """Refuse prompts that this tokenizer reads mostly as its unknown token.

        A word-level tokenizer (the zoo's) maps every word it does not know to ``<unk>``;
        profiles of such prompts measure nothing. Raises when more than ``max_unknown`` of the
        prompts' tokens (special tokens aside) are the unknown token.
        """
        tok = self.tokenizer
        unk = tok.unk_token_id
        # GPT-2-style tokenizers name one token bos, eos and unk: there it is no unknown word
        if unk is None or unk in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
            return
        special = set(tok.all_special_ids) - {unk}
        ids = [t for row in encoded for t in row if t not in special]
        if ids and sum(t == unk for t in ids) > max_unknown * len(ids):
            share = sum(t == unk for t in ids) / len(ids)
            raise ElensError(
                f"The tokenizer of '{self.name}' reads {share:.0%} of these prompts' tokens as "
                f"{self.tokenizer.unk_token}: the model does not know this data's words, and its "
                "profiles would measure nothing. Give it data in its own vocabulary (the zoo models "
                "read the story world: source='synthetic'), or choose another model."
            )

    def profile(self, prompts: Sequence[str | Sequence[int]], **kwargs) -> Profiles:
        """Generate from ``prompts`` and record lens entropies: see
        :func:`~elens_utils.lens.generation.generate_profiles`."""
        if _PROFILER is None:  # only when this module was loaded without the package
            raise ElensError("LensModel.profile needs elens_utils.lens.generation: import elens_utils first.")
        return _PROFILER(self, prompts, **kwargs)


# generate_profiles stands above this module (it takes a LensModel), so it registers itself here
# when imported (the package imports it) instead of being imported: no import cycle.
_PROFILER: Callable[..., Profiles] | None = None


def register_profiler(fn: Callable[..., Profiles]) -> None:
    """Make ``fn`` (:func:`~elens_utils.lens.generation.generate_profiles`) what
    :meth:`LensModel.profile` calls."""
    global _PROFILER
    _PROFILER = fn


def looks_like_path(name: str) -> bool:
    """A name that can only be a path: absolute, relative with ./ or ../, ~, or with more than
    one separator (a Hub id is ``name`` or ``owner/name``)."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name


def _first_line(err: BaseException) -> str:
    line = first_line(err)
    return line if line.endswith(".") else line + "."


_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")


def _unreadable_weights(err: BaseException) -> bool:
    """Whether ``err`` is a weight file that cannot be parsed (safetensors' error, torch's zip reader)."""
    text = str(err)
    return type(err).__name__ == "SafetensorError" or (
        isinstance(err, RuntimeError) and ("PytorchStreamReader" in text or "zip archive" in text)
    )


def _config_misfit(err: BaseException) -> bool:
    """Whether ``err`` from ``from_pretrained`` says that config.json does not fit the weights
    (shapes, vocabulary, a config that is not an object)."""
    text = str(err)
    return (
        isinstance(err, AssertionError)
        or (isinstance(err, RuntimeError) and ("size mismatch" in text or "ignore_mismatched_sizes" in text))
        or (isinstance(err, TypeError) and "NoneType" in text)
    )


def _repair_hint(name: str, path: str | os.PathLike[str]) -> str:
    """How to get intact files back for ``name`` (at ``path``): an embedded model is rebuilt or
    converted again, a zoo model restored from git, a user's directory saved again."""
    if name.startswith(("tiny/", "untrained/", "real/")) or name.lower().endswith(".gguf"):
        return f"Delete {path} and run again: it is built again from its source."
    if name.startswith("zoo/"):
        return f"Restore {path} from the repository (git checkout -- {path})."
    return "Save the model again with model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)."


def _check_finite_weights(model: torch.nn.Module, name: str, hint: str = "Save or download the weights again.") -> None:
    """Raise when a parameter or buffer holds NaN or inf (damaged or diverged weights).

    A float64 sum per tensor finds them without a tensor-sized temporary (NaN and inf carry
    through a sum; float64 does not overflow on finite float32 weights); only a tensor whose sum
    is not finite is counted element by element, for the message.
    """
    for pname, tensor in (*model.named_parameters(), *model.named_buffers()):
        if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum(dtype=torch.float64))):
            continue
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ElensError(
                f"The weights of '{name}' hold NaN or inf ({bad} of {tensor.numel()} values of "
                f"'{pname}'): the file is damaged or the training diverged. {hint}"
            )


def _hub_hint(name: str) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    where = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached or has no such model"
    return (
        f"'{name}' is not a local directory and could not be loaded from the Hugging Face Hub "
        f"({where}). Check the spelling, or download it where you have network "
        f"(`hf download {name} --local-dir DIR`) and pass DIR instead."
    )


def _load_config(name: str, trust_remote_code: bool, revision: str | None):
    from transformers import AutoConfig

    path = Path(name)
    if path.is_dir() and not (path / "config.json").exists():
        raise ElensError(
            f"Directory '{name}' has no config.json, so it is not a saved transformers model. "
            "Save one there with model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)."
        )
    if not path.is_dir() and (path.suffix or name.startswith((".", "/"))) and path.exists():
        raise ElensError(f"'{name}' is a file; pass the directory that holds config.json and the weights.")
    if not path.exists() and looks_like_path(name):
        raise ElensError(
            f"No directory '{name}': check the path (a model directory holds config.json and the weights)."
        )
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code, revision=revision)
    except (OSError, EnvironmentError, TypeError, AttributeError, UnicodeDecodeError) as err:
        if path.is_dir():
            what = _first_line(err) if isinstance(err, OSError) else "it is not a JSON object of settings."
            raise ElensError(
                f"{path / 'config.json'} cannot be read: {what} Repair the file or save the "
                "model again with model.save_pretrained(DIR)."
            ) from err
        if not isinstance(err, OSError):
            raise
        raise ElensError(_hub_hint(name)) from err
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ElensError(
                f"'{name}' needs code from its repository to load. Only if you trust it, "
                "pass trust_remote_code=True (--trust-remote-code on the command line)."
            ) from err
        raise ElensError(f"Cannot read the configuration of '{name}': {err}") from err


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    lens_spec: LensSpec | None = None,
    check: bool = True,
) -> LensModel:
    """Load a decoder-only causal LM and its tokenizer and locate its lens.

    Args:
        name_or_path: a Hub id (``"gpt2"``, ``"Qwen/Qwen3-0.6B"``), a directory written by
            ``save_pretrained``, or an embedded model name (``"tiny/llama-4L"``, see
            :mod:`elens_utils.models.registry`).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"`` (bfloat16 on GPU, float32 on CPU) or a dtype name.
        trust_remote_code: allow code from the model's repository (off unless you turn it on).
        revision: a Hub revision (branch, tag or commit).
        lens_spec: module paths for an architecture the adapter does not find by itself.
        check: verify the parity rule (last block's lens == the model's own output) on a few
            tokens; fails loudly for an unknown final-logit transform.

    Returns:
        A :class:`LensModel` in eval mode.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = os.fspath(name_or_path)
    if name.startswith("~"):
        name = os.path.expanduser(name)
    dev = resolve_device(device)
    if dev.type == "cpu" and (name.startswith("real/") or name.endswith(".gguf")):
        # A first load converts the GGUF file (single-threaded parsing): build the lens kernel
        # on the idle core meanwhile (a no-op wait when it is built already).
        entropy_cpu.build_in_background()
    path = resolve_model(name)
    config = _load_config(path, trust_remote_code, revision)
    model_type = getattr(config, "model_type", None)
    torch_dtype = resolve_dtype(dtype, dev, model_type)
    kwargs = {}
    if model_type in _EAGER_ATTENTION:
        kwargs["attn_implementation"] = "eager"
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
            revision=revision,
            output_loading_info=True,
            **kwargs,
        )
    except ValueError as err:
        raise ElensError(
            f"'{name}' ({model_type}) is not a causal language model that transformers can load "
            f"with AutoModelForCausalLM: {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:
        local = Path(path).is_dir()
        if local and _config_misfit(err):
            raise ElensError(
                f"The config.json of '{name}' does not fit its weights or tokenizer ({type(err).__name__}: "
                f"{_first_line(err)}) {_repair_hint(name, path)}"
            ) from err
        if not (isinstance(err, (OSError, EOFError, pickle.UnpicklingError)) or _unreadable_weights(err)):
            raise  # not about the files (memory, a missing package, a bug): as it is
        if local and any(any(Path(path).glob(g)) for g in _WEIGHT_FILES):
            raise ElensError(
                f"The weights in '{name}' cannot be read ({type(err).__name__}: {_first_line(err)}) The "
                f"file is truncated or damaged. {_repair_hint(name, path)}"
            ) from err
        if local:
            raise ElensError(
                f"Directory '{name}' has a config but no weights (model.safetensors or "
                "pytorch_model.bin). Save the model there with model.save_pretrained(DIR)."
            ) from err
        if isinstance(err, (OSError, EnvironmentError)):
            raise ElensError(_hub_hint(name)) from err
        raise
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)
    except (OSError, ValueError) as err:
        raise ElensError(
            f"No usable tokenizer found for '{name}'. "
            + (_repair_hint(name, path) if name != path else "Save it beside the model with tokenizer.save_pretrained(DIR).")
        ) from err
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ElensError(f"The tokenizer of '{name}' has neither a pad nor an eos token; set tokenizer.pad_token.")
        tokenizer.pad_token = tokenizer.eos_token  # pads are masked out; any id will do
    missing = sorted(info.get("missing_keys") or []) + sorted(str(k) for k in info.get("mismatched_keys") or [])
    if missing:
        raise ElensError(
            f"The weights of '{name}' lack {len(missing)} tensor(s) its config.json asks for ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}): transformers would fill them with random values. The checkpoint "
            f"and config.json do not match. {_repair_hint(name, path)}"
        )
    model.to(dev).eval().requires_grad_(False)
    _check_finite_weights(model, name, _repair_hint(name, path))
    parts = find_lens_parts(model, lens_spec)
    if check:
        probe = torch.arange(1, 5, device=dev).remainder(parts.vocab_size).unsqueeze(0)
        check_parity(model, parts, probe)
    if dev.type == "cpu":
        apply_model_threads(parts.unembed.weight.shape[1], parts.vocab_size)
        parts.unembed.register_forward_pre_hook(_contiguous_input)
    return LensModel(model, tokenizer, parts, name)


def loader_hook(hook: object) -> bool:
    """Whether ``hook`` is one :func:`load_model` attaches itself (it changes no value)."""
    return hook is _contiguous_input


def _contiguous_input(_module: torch.nn.Module, args: tuple) -> tuple | None:
    """Hand the unembedding a contiguous input.

    ``logits_to_keep=1`` slices the last position out of ``[B, S, d]``; torch's CPU linear runs
    that strided view as a batched matmul, 3.5x slower than a plain one on Gemma-3's
    ``[16, 1, 640] x [640, 262144]`` (0.47 s against 0.135 s on 2 cores), which made each
    prompt pass of cloze scoring cost more in its 16 logit rows than in its blocks.
    """
    if args and isinstance(args[0], torch.Tensor) and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None
