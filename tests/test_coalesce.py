"""Concurrent forward passes merged into batches: each caller gets its own rows, passes stay
within their size, a failing pass reaches its callers only, and a server's answers do not change."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmsent.serving.coalesce import Coalescer


class SlowDouble:
    """A forward pass that takes a while (so callers queue) and remembers its batch sizes."""

    def __init__(self, seconds=0.02, fail_on=None):
        self.seconds, self.fail_on, self.sizes = seconds, fail_on, []
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.sizes.append(len(items))
            time.sleep(self.seconds)
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError("bad batch")
            x = np.asarray(items, float)
            return {"double": 2 * x, "square": np.stack([x, x ** 2], 1)}
        finally:
            with self.lock:
                self.inside -= 1


def test_a_lone_call_runs_at_once_and_gets_its_rows():
    fn = SlowDouble(0.0)
    out = Coalescer(fn)([1, 2, 3])
    assert fn.sizes == [3] and out["double"].tolist() == [2, 4, 6] and out["square"].shape == (3, 2)


def test_concurrent_callers_share_passes_and_each_gets_its_own_rows():
    fn = SlowDouble()
    merged = Coalescer(fn, max_batch=8)
    calls = [[i] if i % 3 else [i, i + 100] for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        outs = list(pool.map(merged, calls))
    for items, out in zip(calls, outs):
        assert out["double"].tolist() == [2 * i for i in items]
        assert out["square"][:, 1].tolist() == [i * i for i in items]
    assert merged.passes == len(fn.sizes) < len(calls)  # merged: fewer passes than calls
    assert max(fn.sizes) <= 8 and sum(fn.sizes) == sum(map(len, calls)) and fn.most_inside == 1  # one at a time


def test_a_call_larger_than_a_batch_runs_alone():
    fn = SlowDouble(0.0)
    out = Coalescer(fn, max_batch=4)(list(range(10)))
    assert fn.sizes == [10] and len(out["double"]) == 10
    with pytest.raises(ValueError):
        Coalescer(fn, max_batch=0)


def test_a_failing_pass_reaches_its_callers_and_the_next_pass_works():
    fn = SlowDouble(fail_on=13)
    merged = Coalescer(fn, max_batch=64)

    def call(i):
        try:
            return merged([i])["double"].tolist()
        except RuntimeError as exc:
            return str(exc)

    with ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(call, range(16)))
    assert outs[13] == "bad batch"
    assert all(o == [2 * i] or o == "bad batch" for i, o in enumerate(outs))
    assert merged([5])["double"].tolist() == [10]  # the coalescer is not stuck


def test_a_server_answers_the_same_whether_its_requests_are_merged_or_not():
    from mmsent.serving.pipeline import Pipeline, default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped model")
    pipe = Pipeline.load(device="cpu")
    texts = ["what a great day", "this is awful", "the bus is late again", "I love this song",
             "meh", "so proud of my team", "worst service ever", "ok then"] * 3
    alone = [pipe.predict(text=t) for t in texts]
    before = pipe._merged.passes
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda t: pipe.predict(text=t), texts))
    assert pipe._merged.passes - before < len(texts)  # requests did share passes
    for a, b in zip(alone, together):
        assert a["label"] == b["label"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-5)
