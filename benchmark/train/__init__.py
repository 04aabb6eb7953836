"""Training: cells into ensembles (`cells`), and the loop every torch family trains with (`loop`).

- `cells`: which cells train together, and each trained cell's share of the result;
- `loop`: the steps, the loss, the regulariser and the hooks;
- `optimizers`: Adam, AdamW, SGD and per-member gradient clipping;
- `batches`: what each step sees, and chunked evaluation;
- `checkpoints`: the scores while training, and each member's best parameters.
"""

from .cells import (
    TrainedCell,
    data_shape,
    group_key,
    monitored_splits,
    train_cell,
    train_cells,
)

__all__ = ["TrainedCell", "data_shape", "group_key", "monitored_splits", "train_cell", "train_cells"]
