"""PyTorch: sees every GPU and computes correctly on each (matmul, cuDNN conv, AMP step)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def torch(require_framework):
    return require_framework("torch")


def test_cpu_matmul_matches_numpy(torch):
    import numpy as np

    a, b = torch.randn(256, 128, dtype=torch.float64), torch.randn(128, 64, dtype=torch.float64)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-10)


@pytest.mark.gpu
def test_torch_sees_every_gpu(torch, gpu_count):
    assert torch.cuda.is_available(), (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
    )
    assert torch.cuda.device_count() == gpu_count


def devices(torch):
    return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]


@pytest.mark.gpu
def test_matmul_on_each_gpu_matches_cpu(torch):
    torch.manual_seed(0)
    a, b = torch.randn(1024, 512), torch.randn(512, 256)
    expected = a @ b
    for device in devices(torch):
        # TF32 would round the inputs to 10 mantissa bits; compare full fp32.
        torch.backends.cuda.matmul.allow_tf32 = False
        got = (a.to(device) @ b.to(device)).cpu()
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3, msg=f"{device}")


@pytest.mark.gpu
def test_cudnn_convolution_on_each_gpu_matches_cpu(torch):
    assert torch.backends.cudnn.is_available(), "cuDNN is not available to torch"
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    images, weights = torch.randn(8, 3, 32, 32), torch.randn(16, 3, 3, 3)
    expected = torch.nn.functional.conv2d(images, weights, padding=1)
    for device in devices(torch):
        got = torch.nn.functional.conv2d(images.to(device), weights.to(device), padding=1)
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-3, atol=1e-3, msg=f"{device}")


@pytest.mark.gpu
def test_mixed_precision_training_step_on_each_gpu(torch):
    for device in devices(torch):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
        ).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cuda")
        x, y = torch.randn(128, 64, device=device), torch.randn(128, 1, device=device)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            with torch.autocast("cuda", dtype=torch.float16):
                out = model(x)
                assert out.dtype == torch.float16, "autocast did not run the layer in fp16"
                loss = torch.nn.functional.mse_loss(out.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        assert all(map(torch.isfinite, torch.tensor(losses))), f"{device}: {losses}"
        assert losses[-1] < losses[0], f"{device}: loss did not fall: {losses}"
