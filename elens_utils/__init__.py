"""elens_utils: entropy profiles of language models through the logit lens.

The library behind the Entropy-Lens book (a reproducible companion to arXiv 2502.16570)::

    from elens_utils import load_model
    lm = load_model("gpt2")                      # Hub id or save_pretrained directory
    profiles = lm.profile(["Once upon a time"], max_new_tokens=32)
    profiles.entropy.shape                       # [N prompts, T tokens, L blocks, A alphas], nats
"""

from elens_utils import _moved
from elens_utils.core.errors import ElensError
from elens_utils.core.version import __version__
from elens_utils.entropy.profiles import Profiles
from elens_utils.entropy.streaming import dense_entropy, lens_entropy
from elens_utils.lens.adapters import KNOWN_ARCHITECTURES, LensParts, LensSpec
from elens_utils.lens.capture import prompt_lens
from elens_utils.lens.generation import GenerationSettings, generate_profiles
from elens_utils.lens.loading import LensModel, load_model
from elens_utils.sweeps.cache import ProfileCache
from elens_utils.sweeps.sweep import blank_prompt, profile_models

_moved.install()  # the modules' old flat paths (elens_utils.charts, ...) keep importing


def __getattr__(name: str):
    """``from elens_utils import charts`` and the like: modules under their old flat names."""
    return _moved.old_module(name)


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
