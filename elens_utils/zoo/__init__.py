"""Training tooling of the embedded model zoo, and the model cards (zoo and real models).

The names of the former module ``elens_utils.zoo`` are re-exported from
:mod:`elens_utils.zoo.training`, so code written against it keeps working.
"""

from elens_utils.zoo.training import (  # noqa: F401
    ZOO_FAMILIES,
    ZOO_DEPTHS,
    ZOO_SEED,
    METADATA_FILE,
    CARD_JSON,
    CARD_MD,
    CARD_SCHEMA_VERSION,
    CARD_FIELDS,
    ZooShape,
    model_name,
    zoo_config,
    Recipe,
    TrainingBatches,
    kept_options,
    lookup_questions,
    training_documents,
    encode_documents,
    document_batches,
    train_model,
    extend_mc,
    measure_speed,
    mc_letter_logits,
    evaluate_model,
    train_zoo,
    evaluate_zoo,
    card_from_results,
    validate_card,
    write_card,
    main,
)
