"""The engine's processes reuse freed CPU memory instead of page-faulting it back in.

Each case runs in a fresh interpreter: how a heap that earlier tests have fragmented serves
one allocation is chance, but a loop that allocates and frees the same buffers every step,
as an optimiser does, must settle into reusing them."""

import subprocess
import sys

import pytest

BUFFERS_PER_STEP = 3
BUFFER_BYTES = 48 * 2**20  # above 32 MB, the largest block glibc would otherwise keep
WARM_UP_STEPS = 10  # glibc's bins took 4 to 6 steps to settle in trials
MEASURED_STEPS = 5

STEPS_SCRIPT = f"""
import resource, sys, torch
from nfx.engine.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()

def step():
    activations = [torch.ones({BUFFER_BYTES // 4}) for _ in range({BUFFERS_PER_STEP})]
    del activations

def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

for _ in range({WARM_UP_STEPS}):
    step()  # the heap grows to the step's peak and its free blocks settle
before = minor_faults()
for _ in range({MEASURED_STEPS}):
    step()
print(minor_faults() - before)
"""


def faults_in_steady_steps(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS_SCRIPT, mode],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc switch")
def test_steady_steps_reuse_freed_buffers_without_page_faults():
    pages = MEASURED_STEPS * BUFFERS_PER_STEP * BUFFER_BYTES // 4096
    assert faults_in_steady_steps("default") > pages // 2  # glibc's default: fresh pages each step
    assert faults_in_steady_steps("keep") < pages // 10
