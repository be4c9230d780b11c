"""The engine's processes reuse freed CPU memory instead of page-faulting it back in."""

import resource

import torch

from nfx.memory import keep_freed_memory


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_a_freed_large_buffer_is_reused_without_page_faults():
    assert keep_freed_memory()
    elements = 48 * 2**20 // 4  # 48 MB: above the largest size glibc would serve from its heap
    torch.ones(elements)  # allocated, touched and freed
    before = minor_faults()
    torch.ones(elements)
    pages = elements * 4 // 4096
    assert minor_faults() - before < pages // 10
