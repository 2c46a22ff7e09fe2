"""The zoo's training recipe: everything that decides a zoo model besides its family and depth.

The recipe
----------
:class:`Recipe` (its docstring gives the reasons): AdamW (betas 0.9/0.95, weight decay on
matrices, peak rate 1e-3: a higher rate kept in-context copying from appearing at all), linear
warm-up, constant rate, linear decay over the last 15 %, gradient clipping at 1. Batches of 16
whole documents (``<bos> text <eos>``), one per row, right-padded (padding is out of the loss),
so every document starts at position 0 and attends only to itself, as a prompt does at
evaluation (packing documents into shared rows let later documents attend to earlier ones'
names and letters and slowed learning). The corpus (:func:`~elens_utils.zoo.training.training_documents`) mixes the
stories, task prompts and format texts of ``StoryWorld(seed).training_corpus(split="train")``
with MC questions and open questions built on training stories (held-out stories, questions and
topics never enter). Three phases: an entity warm-up, the main phase, and an MC phase whose
focus batches train the answer letter alone; the 8-block models open with a look-up phase that
teaches the MC letter read-out.

Training runs in float32 with ``torch.manual_seed(seed)``: on one thread (the default) two runs
of the same seed on the same machine give bit-identical weights; other CPUs or thread counts
differ by rounding, which is what "within noise" means on the card. The checkpoint is written
once at the end, into a temporary directory beside the target, then renamed into place, with
weights cast to bfloat16 (never float16: Gemma-2's activations overflow it; bf16 weights load
exactly in float32 on CPU, which is what ``load_model`` does there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from elens_utils.models.zoo_arch import ZooShape

ZOO_SEED = 0

_DEFAULT_MIX = {"story": 0.15, "task": 0.15, "format": 0.1, "mc": 0.35, "qa": 0.25}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a zoo model besides its family and depth.

    The run has up to four phases, in steps:

    1. *entity warm-up* (``entity_warmup_steps``, at most a tenth of the steps): only the tokens of the world's entities
       (names, objects, colours, places, animals) are in the loss, so the model first learns
       to copy them from its context (with the full loss from the start, in-context copying
       took thousands of steps to appear in calibration);
    2. *look-up phase* (8-block models), the first ``lookup_phase_tokens`` of the budget:
       look-up documents alone (:func:`~elens_utils.zoo.documents.lookup_docs`, cut stories), the MC letter read-out
       without the question, each keeping between ``lookup_phase_min_options`` and four of
       its options. On look-ups alone GPT-2-8L jumped from chance to 100 % read-out after
       about 6 k steps with four options in one run, but not by 7.5 k in another; with one to
       four after 4-4.5 k steps in two runs on the same documents, and on this phase's own
       documents not within 3.5 M tokens (about 5.5 k steps) but at 8 k steps of a 7 M-token
       phase (``research/zoo-readout``, rows 15, 22, 33, 35, 37 and 38), which the shipped zoo uses
       (row 39). The warm-up's steps are its first.
    3. *main*: next-token loss on the corpus mix (:func:`~elens_utils.zoo.training.training_documents`, which may hold
       look-ups), the answers of task, open-question, MC and look-up documents weighed
       ``answer_weight``;
    4. *MC phase*, the last ``mc_phase_frac`` of the tokens after the look-up phase: main
       batches alternate with *focus* batches of MC documents whose loss is the answer letter
       alone, a share ``mc_focus_share`` of the phase's batches. (A weight on the letter inside
       mixed batches was far slower in calibration.) A focus document asks up to
       ``mc_questions_per_doc`` questions about its story (:func:`~elens_utils.zoo.documents.focus_docs`), so a focus
       batch holds more letters.

    Weights depend on the position only, never on the token's value, so they do not bias the
    model's distribution at any position. The learning rate warms up over ``warmup_frac`` of
    the steps, stays at ``lr`` and decays linearly to ``min_lr_ratio * lr`` over the last
    ``decay_frac`` (a constant rate helps the late MC phase). ``tokens`` maps a depth to its
    compute budget in processed (non-pad) tokens, look-up phase included; a depth not listed
    gets ``tokens_default``.

    Qwen3's query/key norm gains start at ``qk_norm_gain`` (``training._init_qk_norms``): 2, not the
    real architecture's 1, because with unit gains Qwen3-8L needed four extension rounds to
    learn the MC read-out (``research/zoo-readout``, rows 21 and 23).
    """

    seed: int = ZOO_SEED
    # Only the 8-block models must learn the MC read-out, which needed ~80k focus letters after
    # the main phase in calibration, and more (extension rounds) for some families.
    tokens: Mapping[int, int] = field(default_factory=lambda: {2: 3_000_000, 4: 4_000_000, 8: 12_000_000})
    tokens_default: int = 3_000_000
    # GPT-2-8L needs the phase: without it, it stayed at chance on multiple choice through two
    # extension rounds; with it, it scored 100% (research/zoo-readout, rows 34 and 38). The other
    # 8-block models learned the read-out either way, and with the phase their held-out loss
    # was lower too (row 39). A phase of four-option look-ups (row 25) had left Llama-8L at 52%
    # and GPT-2-8L at chance.
    lookup_phase_tokens: Mapping[int, int] = field(default_factory=lambda: {8: 7_000_000})
    # The look-up phase's documents keep between this many and four of their options
    # (:func:`~elens_utils.zoo.documents.lookup_docs`): choosing among fewer options first is what GPT-2-8L could learn.
    lookup_phase_min_options: int = 1
    seq_len: int = 128  # longest document (the world's longest is 114 tokens with <bos>/<eos>)
    batch_size: int = 16  # documents per step
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.02
    decay_frac: float = 0.15
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    entity_warmup_steps: int = 300
    answer_weight: float = 4.0
    mc_phase_frac: float = 0.7
    mc_focus_share: float = 0.8
    mc_questions_per_doc: int = 1
    qk_norm_gain: float = 2.0  # initial query/key norm gains (Qwen3): see _init_qk_norms
    # The MC extension (:func:`~elens_utils.zoo.training.extend_mc`): models of at least ``mc_extend_min_layers`` blocks
    # whose validation MC accuracy is below ``mc_extend_target`` after the main run continue the
    # MC phase from their checkpoint, ``mc_extend_round_tokens`` at a time, for at most
    # ``mc_extend_max_rounds`` rounds (the read-out appears abruptly and at a run-to-run varying
    # point; a fixed budget that always suffices would triple the zoo's training time). Two
    # rounds at most keep ``make zoo`` within the hour; more never carried GPT-2-8L.
    mc_extend_min_layers: int = 8
    mc_extend_target: float = 0.8
    mc_extend_round_tokens: int = 1_500_000
    mc_extend_max_rounds: int = 2
    mix: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_MIX))
    shape: ZooShape = field(default_factory=ZooShape)

    def tokens_for(self, n_layers: int) -> int:
        return int(self.tokens.get(n_layers, self.tokens_default))

    def lookup_tokens_for(self, n_layers: int) -> int:
        return int(self.lookup_phase_tokens.get(n_layers, 0))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tokens"] = {str(k): v for k, v in self.tokens.items()}
        d["lookup_phase_tokens"] = {str(k): v for k, v in self.lookup_phase_tokens.items()}
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Recipe:
        """The recipe :meth:`to_json` wrote (a model's ``zoo_model.json``)."""
        d = dict(d)
        for key in ("tokens", "lookup_phase_tokens"):
            if key in d:
                d[key] = {int(k): v for k, v in d[key].items()}
        return cls(**{**d, "betas": tuple(d["betas"]), "shape": ZooShape(**d["shape"])})
