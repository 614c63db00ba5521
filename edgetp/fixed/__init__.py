"""Integer-only Traces Propagation: the quantized reference the microcontroller runs.

Formats, rounding and the update rule: docs/fixed-point.md.
"""

from edgetp.fixed.bench import bench_fixed
from edgetp.fixed.finetune import evaluate_fixed, finetune_fixed
from edgetp.fixed.network_q import QState, infer_step_q, init_state_q, predict_q, train_sequence_q, train_step_q
from edgetp.fixed.qconfig import QModel, from_float
from edgetp.fixed.quantize import format_report, quantize_inputs, quantize_model
from edgetp.fixed.update_q import QOpt

__all__ = [
    "QModel",
    "QOpt",
    "QState",
    "from_float",
    "quantize_model",
    "quantize_inputs",
    "format_report",
    "init_state_q",
    "train_step_q",
    "infer_step_q",
    "train_sequence_q",
    "predict_q",
    "finetune_fixed",
    "evaluate_fixed",
    "bench_fixed",
]
