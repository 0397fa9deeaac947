"""Framework probe, run as a child process: `python -m dlcheck.probes.probe NAME`.

Prints exactly one JSON document on stdout. Whatever the framework itself prints goes to
stderr (stdout is redirected while it loads). The parent never imports a framework, so a crash
or hang stays here. `probe_<name>` is looked up for every name in frameworks.REGISTRY.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback

TOLERANCE = 1e-3  # fp32 matmul of 64x64 values in [-1, 1): GPU vs CPU must agree this closely


def _matrices():
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (64, 64)).astype("float32")
    b = rng.uniform(-1, 1, (64, 64)).astype("float32")
    return a, b, a.astype("float64") @ b.astype("float64")


def _compare(result, expected) -> dict:
    import numpy as np

    error = float(np.max(np.abs(np.asarray(result, dtype="float64") - expected)))
    return {"ok": error <= TOLERANCE, "max_abs_error": error, "error": None}


def probe_torch() -> dict:
    import torch

    cuda = torch.version.cuda
    info = {
        "version": torch.__version__,
        "cuda": cuda,
        "cuda_build": cuda is not None,
        "cudnn": None,
        "cudnn_built": None,
        "is_available": False,
        "gpu_count": 0,
        "arch_list": [],
        "devices": [],
        "cpu_matmul_ok": None,
    }
    a, b, expected = _matrices()
    info["cpu_matmul_ok"] = _compare((torch.from_numpy(a) @ torch.from_numpy(b)).numpy(), expected)[
        "ok"
    ]
    if cuda is None:
        return info
    info["is_available"] = bool(torch.cuda.is_available())
    info["gpu_count"] = torch.cuda.device_count() if info["is_available"] else 0
    info["arch_list"] = list(torch.cuda.get_arch_list()) if info["is_available"] else []
    try:
        compiled = torch._C._cudnn.getCompileVersion()  # (major, minor, patch)
        info["cudnn_built"] = ".".join(str(x) for x in compiled)
    except Exception:
        pass
    try:
        loaded = torch.backends.cudnn.version()  # e.g. 91002 -> 9.10.2
        if loaded:
            info["cudnn"] = f"{loaded // 10000}.{loaded % 10000 // 100}.{loaded % 100}"
    except Exception:
        pass
    torch.backends.cuda.matmul.allow_tf32 = False  # compare real fp32, not TF32
    for index in range(info["gpu_count"]):
        device = {"index": index, "name": None, "capability": None, "matmul": None}
        try:
            device["name"] = torch.cuda.get_device_name(index)
            major, minor = torch.cuda.get_device_capability(index)
            device["capability"] = f"{major}.{minor}"
            x = torch.from_numpy(a).to(f"cuda:{index}")
            y = torch.from_numpy(b).to(f"cuda:{index}")
            device["matmul"] = _compare((x @ y).cpu().numpy(), expected)
        except Exception as error:  # "no kernel image is available" lands here
            device["matmul"] = {"ok": False, "max_abs_error": None, "error": _one_line(error)}
        info["devices"].append(device)
    return info


def probe_tensorflow() -> dict:
    # 1 keeps TensorFlow's warnings ("Cannot dlopen some GPU libraries") in the stderr tail
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    info = {
        "version": tf.__version__,
        "cuda": build.get("cuda_version"),
        "cudnn_built": build.get("cudnn_version"),
        "cudnn": None,  # TF reports no loaded-cuDNN API; a mismatch shows in its log (stderr)
        "cuda_build": bool(build.get("is_cuda_build", False)),
        "arch_list": _tf_archs(build.get("cuda_compute_capabilities")),
        "is_available": bool(gpus),
        "gpu_count": len(gpus),
        "devices": [],
    }
    a, b, expected = _matrices()
    for index, _ in enumerate(gpus):
        device = {"index": index, "name": None, "capability": None, "matmul": None}
        try:
            details = tf.config.experimental.get_device_details(gpus[index])
            device["name"] = details.get("device_name")
            cc = details.get("compute_capability")
            device["capability"] = f"{cc[0]}.{cc[1]}" if cc else None
            with tf.device(f"/GPU:{index}"):
                result = tf.linalg.matmul(tf.constant(a), tf.constant(b))
            device["matmul"] = _compare(result.numpy(), expected)
        except Exception as error:
            device["matmul"] = {"ok": False, "max_abs_error": None, "error": _one_line(error)}
        info["devices"].append(device)
    return info


def _tf_archs(value) -> list[str]:
    # "sm_60,sm_70,compute_80" or a list, depending on the build
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def probe_keras() -> dict:
    env_backend = os.environ.get("KERAS_BACKEND") or None
    config_path = os.path.join(os.environ.get("KERAS_HOME", ""), "keras.json")
    config_backend = None
    if os.path.exists(config_path):
        with open(config_path) as handle:
            config_backend = json.load(handle).get("backend")
    source = "KERAS_BACKEND" if env_backend else "keras.json" if config_backend else "default"
    user_config = os.path.join(os.environ.get("DLCHECK_USER_KERAS_HOME", ""), "keras.json")
    info = {
        "version": None,
        "backend": None,
        "backend_source": source,
        "backend_error": None,
        "keras_json": user_config if config_backend else None,  # the user's file, never written
    }
    try:
        import keras

        info["version"] = keras.__version__
        info["backend"] = keras.config.backend()
    except Exception as error:  # the chosen backend is missing or broken
        info["backend"] = env_backend or config_backend or "tensorflow"
        info["backend_error"] = _one_line(error)
        spec = importlib.util.find_spec("keras")
        if spec is not None:
            from importlib.metadata import version

            info["version"] = version("keras")
    return info


def probe_jax() -> dict:
    import jax

    devices = jax.devices()
    gpus = [d for d in devices if d.platform == "gpu"]
    return {
        "version": jax.__version__,
        "cuda": None,
        "cuda_build": any(d.platform == "gpu" for d in devices),
        "is_available": bool(gpus),
        "gpu_count": len(gpus),
        "platforms": sorted({d.platform for d in devices}),
    }


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def main(argv: list[str]) -> int:
    from dlcheck.children import bind_to_parent
    from dlcheck.frameworks import REGISTRY

    bind_to_parent()
    name = argv[1] if len(argv) > 1 else ""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # frameworks that print to stdout now print to stderr
    result = {"installed": False, "error": None}
    probe = globals().get(f"probe_{name}") if name in REGISTRY else None
    if probe is None:
        result["error"] = f"unknown framework {name!r}"
    elif importlib.util.find_spec(name) is not None:
        result["installed"] = True
        try:
            result.update(probe())
        except BaseException as error:  # report, never crash: the parent reads our JSON
            result["error"] = _one_line(error)
            traceback.print_exc()
    out.write(json.dumps(result, sort_keys=True) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
