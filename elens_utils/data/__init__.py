"""Datasets and prompts: the story world, the fact bank and its questions, Hub datasets, prompt rendering per model.

The names of the former module ``elens_utils.data`` are re-exported from
:mod:`elens_utils.data.prompts`, so code written against it keeps working.
"""

from elens_utils.data.prompts import (  # noqa: F401
    SOURCES,
    MC_SOURCES,
    FACTS,
    TINYSTORIES,
    MMLU,
    SYNTHETIC_MC_DEFAULT,
    PAPER_TASK_INSTRUCTIONS,
    PAPER_FORMAT_INSTRUCTIONS,
    FORMAT_TOPICS,
    MMLU_STYLES,
    paper_task_prompt,
    task_prompts,
    format_prompts,
    mmlu_prompt,
    multiple_choice,
    for_model,
    prompts_for,
)
