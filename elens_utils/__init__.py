"""elens_utils: entropy profiles of language models through the logit lens.

The library behind the Entropy-Lens book (a reproducible companion to arXiv 2502.16570)::

    from elens_utils import load_model
    lm = load_model("gpt2")                      # Hub id or save_pretrained directory
    profiles = lm.profile(["Once upon a time"], max_new_tokens=32)
    profiles.entropy.shape                       # [N prompts, T tokens, L blocks, A alphas], nats
"""

from importlib.metadata import PackageNotFoundError, version

from .adapters import KNOWN_ARCHITECTURES, LensParts, LensSpec
from .cache import ProfileCache
from .entropy import dense_entropy, lens_entropy
from .errors import ElensError
from .generation import GenerationSettings, generate_profiles
from .lens import prompt_lens
from .loading import LensModel, load_model
from .profiles import Profiles
from .sweep import blank_prompt, profile_models

try:
    __version__ = version("elens-utils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "KNOWN_ARCHITECTURES",
    "ElensError",
    "GenerationSettings",
    "LensModel",
    "LensParts",
    "LensSpec",
    "ProfileCache",
    "Profiles",
    "__version__",
    "blank_prompt",
    "dense_entropy",
    "generate_profiles",
    "lens_entropy",
    "load_model",
    "profile_models",
    "prompt_lens",
]
