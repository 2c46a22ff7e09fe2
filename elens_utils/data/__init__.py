"""Datasets and prompts: the story world, the fact bank and its questions, Hub datasets, prompt rendering per model.

The names of the former module ``elens_utils.data`` are re-exported from
:mod:`elens_utils.data.prompts`, so code written against it keeps working.
"""

from elens_utils.data.prompts import (  # noqa: F401
    FACTS,
    FORMAT_TOPICS,
    MC_SOURCES,
    MMLU,
    MMLU_STYLES,
    PAPER_FORMAT_INSTRUCTIONS,
    PAPER_TASK_INSTRUCTIONS,
    SOURCES,
    SYNTHETIC_MC_DEFAULT,
    TINYSTORIES,
    for_model,
    format_prompts,
    mmlu_prompt,
    multiple_choice,
    paper_task_prompt,
    prompts_for,
    task_prompts,
)
