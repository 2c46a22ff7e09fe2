"""Training tooling of the embedded model zoo, and the model cards (zoo and real models).

The names of the former module ``elens_utils.zoo`` are re-exported from
:mod:`elens_utils.zoo.training`, so code written against it keeps working.
"""

from elens_utils.zoo.training import (  # noqa: F401
    CARD_FIELDS,
    CARD_JSON,
    CARD_MD,
    CARD_SCHEMA_VERSION,
    METADATA_FILE,
    ZOO_DEPTHS,
    ZOO_FAMILIES,
    ZOO_SEED,
    Recipe,
    TrainingBatches,
    ZooShape,
    card_from_results,
    document_batches,
    encode_documents,
    evaluate_model,
    evaluate_zoo,
    extend_mc,
    kept_options,
    lookup_questions,
    main,
    mc_letter_logits,
    measure_speed,
    model_name,
    train_model,
    train_zoo,
    training_documents,
    validate_card,
    write_card,
    zoo_config,
)
