"""The run store's metric names: the one table that the module, the callbacks, TensorBoard, the store's
readers and the dashboard's figures use (ARCHITECTURE.md and the README describe the same table).

A row of ``metrics.jsonl`` is ``{"step", "epoch", "time", <metric>: value, ...}``: per training step the
``STEP_METRICS``, per validation epoch the ``EPOCH_METRICS``, and once at step 0 ``KNN_ACC_RANDOM_INIT``.
Accuracies are fractions in [0, 1]; a NaN/inf value is stored as null.
"""

from __future__ import annotations

from dataclasses import dataclass

ROW_KEYS = ("step", "epoch", "time")  # every row has them; not metrics

TRAIN_LOSS = "train_loss"
TRAIN_ACC_TOP1 = "train_acc_top1"
TRAIN_ACC_TOP5 = "train_acc_top5"
TRAIN_ACC_MEAN_POS = "train_acc_mean_pos"
LR = "lr"
VIEWS_PER_S = "views_per_s"
VAL_LOSS = "val_loss"
VAL_ACC_TOP1 = "val_acc_top1"
VAL_ACC_TOP5 = "val_acc_top5"
VAL_ACC_MEAN_POS = "val_acc_mean_pos"
KNN_ACC = "knn_acc"
KNN_ACC_RANDOM_INIT = "knn_acc_random_init"
RANKME = "rankme"
# The methods' own loss terms (simclr_core/methods), per training step of the runs of that method.
TRAIN_MOMENTUM = "train_momentum"
TRAIN_ON_DIAGONAL = "train_on_diagonal"
TRAIN_OFF_DIAGONAL = "train_off_diagonal"
TRAIN_INVARIANCE = "train_invariance"
TRAIN_VARIANCE = "train_variance"
TRAIN_COVARIANCE = "train_covariance"


@dataclass(frozen=True)
class Metric:
    name: str
    when: str  # "step" (every training step), "epoch" (every validation), "start" (once, at step 0)
    meaning: str


METRICS: tuple[Metric, ...] = (
    Metric(TRAIN_LOSS, "step", "InfoNCE loss of the step's batch (mean over ranks)"),
    Metric(TRAIN_ACC_TOP1, "step", "share of anchors whose positive ranks first among all other views"),
    Metric(TRAIN_ACC_TOP5, "step", "share of anchors whose positive ranks in the top 5"),
    Metric(TRAIN_ACC_MEAN_POS, "step", "mean rank of the positive (1 is best)"),
    Metric(LR, "step", "learning rate of the step"),
    Metric(VIEWS_PER_S, "step", "augmented views trained per second over the last flush window"),
    Metric(VAL_LOSS, "epoch", "InfoNCE loss on augmented validation images (fixed views per epoch)"),
    Metric(VAL_ACC_TOP1, "epoch", "train_acc_top1 on the validation views"),
    Metric(VAL_ACC_TOP5, "epoch", "train_acc_top5 on the validation views (the seed's best.ckpt monitor)"),
    Metric(VAL_ACC_MEAN_POS, "epoch", "train_acc_mean_pos on the validation views"),
    Metric(KNN_ACC, "epoch", "leave-one-out weighted kNN accuracy of frozen backbone features"),
    Metric(KNN_ACC_RANDOM_INIT, "start", "knn_acc of the untrained encoder: the kNN chart's reference level"),
    Metric(RANKME, "epoch", "effective rank (RankMe) of the validation images' backbone features: low means collapse"),
    Metric(TRAIN_MOMENTUM, "step", "byol: the target network's EMA momentum tau of the step"),
    Metric(TRAIN_ON_DIAGONAL, "step", "barlowtwins: sum of (1 - C_ii)^2, the invariance term"),
    Metric(TRAIN_OFF_DIAGONAL, "step", "barlowtwins: sum of C_ij^2 off the diagonal, the redundancy term (unweighted)"),
    Metric(TRAIN_INVARIANCE, "step", "vicreg: mean squared distance between the views' embeddings (unweighted)"),
    Metric(TRAIN_VARIANCE, "step", "vicreg: hinge on each dimension's std below 1, both views (unweighted)"),
    Metric(TRAIN_COVARIANCE, "step", "vicreg: squared off-diagonal covariances over D, both views (unweighted)"),
)
METHOD_METRICS = (
    TRAIN_MOMENTUM,
    TRAIN_ON_DIAGONAL,
    TRAIN_OFF_DIAGONAL,
    TRAIN_INVARIANCE,
    TRAIN_VARIANCE,
    TRAIN_COVARIANCE,
)

# In the order of ``SimCLRModule.last_train_metrics`` (loss, top-1, top-5, mean rank; the method's terms follow).
TRAIN_METRICS = tuple(
    m.name for m in METRICS if m.when == "step" and m.name.startswith("train_") and m.name not in METHOD_METRICS
)
STEP_METRICS = tuple(m.name for m in METRICS if m.when == "step")
VAL_METRICS = tuple(m.name for m in METRICS if m.when == "epoch" and m.name.startswith("val_"))
EPOCH_METRICS = tuple(m.name for m in METRICS if m.when == "epoch")


def tensorboard_tag(name: str) -> str:
    """The metric's TensorBoard tag: grouped by when it is measured, the seed's name kept inside the group.

    ``train/train_loss``, ``train/lr``, ``val/val_acc_top5``, ``val/knn_acc``: TensorBoard draws one section
    per group, and its tag filter (``train_loss``) finds both a run's curve and the tutorial's (flat tags).
    """
    when = next((m.when for m in METRICS if m.name == name), "step")
    return f"{'train' if when == 'step' else 'val'}/{name}"


def is_per_epoch(name: str) -> bool:
    """True for a metric measured once per validation (drawn with markers), False for per-step ones."""
    return name in EPOCH_METRICS or name == KNN_ACC_RANDOM_INIT
