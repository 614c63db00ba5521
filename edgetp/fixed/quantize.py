"""Float model -> integer model, with a report of what was lost.

Scales (docs/fixed-point.md, section 3): every scale is a power of two.
- inputs: ``fx`` = the largest fractional bit count with which the ``input_pct``-th
  percentile of |x| over the calibration features fits the input type (int16 by default,
  int8 selectable; rarer, larger values saturate);
- weights: per tensor, the largest fractional bit count with which ``headroom * max|W|``
  fits the weight type (headroom > 1 leaves room for fine-tuning to grow weights);
- neuron constants: fixed formats (membrane Q.12, leaks Q0.15, traces Q.ft from lambda).

The report compares float and integer inference on the calibration set (accuracy when
labels are given, agreement of the predictions always) and lists, per tensor, the
relative RMS error of the weights and the fraction of saturated inputs.
"""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import predict_q
from edgetp.fixed.qconfig import QModel, float_tensors, frac_bits, from_float, quantize_array
from edgetp.tp.network import predict


def input_bits(xs: np.ndarray, pct: float = 99.99, xbits: int = 16) -> int:
    """Fractional bits of the input format (signed ``xbits``) from calibration features."""
    a = np.abs(np.asarray(xs, dtype=np.float64)).ravel()
    if a.size == 0:
        raise EdgetpError("calibration set is empty")
    return frac_bits(float(np.percentile(a, pct)), xbits)


def quantize_inputs(xs: np.ndarray, fx: int, xbits: int = 16) -> np.ndarray:
    """round-half-up(x * 2^fx) saturated to int8/int16: the frontend's float -> int boundary
    (``qconfig.quantize_array``, the one float -> int conversion)."""
    return quantize_array(xs, fx, xbits)


def quantize_model(
    model,
    calib_x: np.ndarray,
    calib_y: np.ndarray | None = None,
    wbits: int = 8,
    headroom: float = 1.0,
    input_pct: float = 99.99,
    xbits: int = 16,
) -> QModel:
    """Quantize ``model`` (an :class:`edgetp.model.Model`) using calibration features
    ``calib_x`` (N, T, F) float; the returned QModel carries ``report``."""
    calib_x = np.asarray(calib_x, dtype=np.float32)
    if calib_x.ndim != 3 or calib_x.shape[2] != model.cfg.n_in:
        raise EdgetpError(f"calibration features must be (N, T, {model.cfg.n_in}), got {calib_x.shape}")
    fx = input_bits(calib_x, input_pct, xbits)
    qm = from_float(model.cfg, model.params, fx, wbits, headroom, getattr(model, "labels", None), xbits)
    qm.report = loss_report(model, qm, calib_x, calib_y)
    return qm


def weight_errors(params, qm: QModel) -> dict:
    """Per tensor: relative RMS error of the dequantized weights and the saturated fraction."""
    out = {}
    for n, w in float_tensors(params).items():
        qmax = (1 << (qm.bits_of(n) - 1)) - 1
        q = qm.weights[n].astype(np.float64)
        deq = q / 2.0 ** qm.frac_of(n)
        rms = float(np.sqrt(np.mean(np.asarray(w, np.float64) ** 2))) or 1.0
        out[n] = {
            "frac_bits": qm.fw[n],
            "rel_rms_error": float(np.sqrt(np.mean((deq - w) ** 2)) / rms),
            "saturated": float(np.mean(np.abs(q) >= qmax)),
        }
    return out


def loss_report(model, qm: QModel, xs: np.ndarray, ys: np.ndarray | None = None) -> dict:
    """What quantization lost on ``xs``: accuracies, prediction agreement, per-tensor errors."""
    xq = quantize_inputs(xs, qm.fx, qm.xbits)
    pf = predict(model.params, xs, model.cfg)
    pq = predict_q(qm, xq)
    rep = {
        "n": int(len(xs)),
        "fx": qm.fx,
        "wbits": qm.wbits,
        "xbits": qm.xbits,
        "ft": qm.ft,
        "input_saturated": float(np.mean(np.abs(xq.astype(np.int32)) >= (1 << (qm.xbits - 1)) - 1)),
        "agreement": float(np.mean(pf == pq)),
        "weights": weight_errors(model.params, qm),
    }
    if ys is not None:
        ys = np.asarray(ys)
        rep["float_accuracy"] = float(np.mean(pf == ys))
        rep["int_accuracy"] = float(np.mean(pq == ys))
        rep["lost_pp"] = 100.0 * (rep["float_accuracy"] - rep["int_accuracy"])
    return rep


def format_report(rep: dict) -> str:
    """Human-readable lines of a loss report."""
    lines = [
        f"quantized with int{rep['wbits']} weights, inputs Q.{rep['fx']} int{rep['xbits']} "
        f"({100 * rep['input_saturated']:.3f} % saturated), traces Q.{rep['ft']}"
    ]
    if "float_accuracy" in rep:
        lines.append(
            f"accuracy on {rep['n']} calibration samples: float {100 * rep['float_accuracy']:.2f} %, "
            f"integer {100 * rep['int_accuracy']:.2f} % (lost {rep['lost_pp']:.2f} pp)"
        )
    lines.append(f"float/integer predictions agree on {100 * rep['agreement']:.2f} %")
    for n, e in rep["weights"].items():
        lines.append(
            f"  {n:6s} Q.{e['frac_bits']:<2d} rel. RMS error {e['rel_rms_error']:.4f}, "
            f"saturated {100 * e['saturated']:.3f} %"
        )
    return "\n".join(lines)
