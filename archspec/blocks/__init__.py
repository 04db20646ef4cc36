"""Block families: registry entries that emit IR. See `archspec.spec.families` for the protocol
and how to add one (docs/blocks.md)."""

from ..spec.families import BLOCKS, BlockContext, BlockFamily, block_family, load_builtin_blocks, register_block

__all__ = ["BLOCKS", "BlockContext", "BlockFamily", "block_family", "load_builtin_blocks", "register_block"]
