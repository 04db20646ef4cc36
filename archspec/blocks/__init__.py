"""Block families: registry entries that emit IR. See `registry` for how to add one."""

from ..spec.families import BLOCKS, BlockContext, BlockFamily, block_family, load_builtin_blocks, register_block

__all__ = ["BLOCKS", "BlockContext", "BlockFamily", "block_family", "load_builtin_blocks", "register_block"]
