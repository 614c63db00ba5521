"""The float reference of Traces Propagation (spec: docs/tp-algorithm.md)."""
from edgetp.tp.config import NetConfig, Params, parse_net, init_params
from edgetp.tp.network import TPState, Optimizer, init_state, train_step, infer_step, train_sequence, infer_sequence, predict

__all__ = ["NetConfig", "Params", "parse_net", "init_params", "TPState", "Optimizer",
           "init_state", "train_step", "infer_step", "train_sequence", "infer_sequence", "predict"]
