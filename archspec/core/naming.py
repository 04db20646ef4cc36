"""Every name archspec makes: module paths' parts, Python identifiers, class names.

One module, so that the compiled module, the exported source and the YAML block
language cannot drift apart on how `inverted_residual` becomes a class or how a
name that is taken gets a number.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Container

# Names that an fx graph's generated forward already uses.
_FX_TAKEN = ("self", "x")

# What every module a layer can be registered on already has (torch.nn.Module, nn.Sequential and
# torch.fx.GraphModule, the containers of built layers), besides `__dunder__` names: a layer or
# scope named so cannot be registered (`add_module` refuses it) nor assigned in exported source.
# Written out so that validation needs no torch; tests/test_block_graphs.py holds it to torch's dir().
MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _boxed_call _buffers _call_impl _code
    _compiled_call_impl _create_node_hooks _deepcopy_hooks _deepcopy_init _erase_node_hooks _forward_hooks
    _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs
    _get_backward_hooks _get_backward_pre_hooks _get_item_by_idx _get_name _graph _is_full_backward_hook
    _lineno_map _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
    _maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
    _prologue_start _recompile_submodules _register_create_node_hook _register_deepcopy_hook
    _register_erase_node_hook _register_load_state_dict_pre_hook _register_replace_node_hook
    _register_state_dict_hook _replace_hooks _replicate_for_data_parallel _save_to_state_dict
    _set_replace_hook _slow_forward _state_dict_hooks _state_dict_pre_hooks _tracer_cls _tracer_extras
    _unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
    _unregister_replace_node_hook _version _wrapped_call _wrapped_call_impl add_module add_submodule append
    apply bfloat16 buffers call_super_init children code compile cpu cuda delete_all_unused_submodules
    delete_submodule double dump_patches eval extend extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule graph half insert ipu load_state_dict meta modules mtia named_buffers
    named_children named_modules named_parameters parameters pop print_readable recompile
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule shape_env share_memory
    state_dict to to_empty to_folder train training type xpu zero_grad
""".split())


def module_name_problem(name: str) -> str | None:
    """Why `name` (a layer's or a scope's, `a.b` for a nested one) cannot become a module path, or None."""
    for part in str(name).split("."):
        if not part:
            return f"name '{name}' is empty" if not name else f"name '{name}' has an empty part"
        if part.startswith("__") or part in MODULE_ATTRIBUTES:
            return f"name '{part}' is taken by every torch module (an attribute of nn.Module); choose another"
        if keyword.iskeyword(part):  # torch.fx's generated forward reads modules as attributes: `self.if(x)`
            return (f"name '{part}' is a Python keyword: torch.fx's generated code could not call the module "
                    f"(`self.{part}(x)`); choose another ('{part}_')")
    return None


def class_name(text: str) -> str:
    """The class a family's blocks become, compiled or exported: `inverted_residual` -> `InvertedResidual`."""
    name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", text) if part) or "Block"
    return name if name[0].isalpha() else "Block" + name


def identifier(text: str) -> str:
    """A Python identifier for `text`: `downsample.0` -> `downsample_0`, `2x` -> `_2x`, `if` -> `if_`."""
    name = re.sub(r"\W", "_", text).strip("_") or "value"
    if name[0].isdigit():
        name = "_" + name
    return name + "_" if keyword.iskeyword(name) else name


def unique(name: str, taken: Container[str]) -> str:
    """`name`, else `name2`, `name3`, ...: the first not in `taken` (and never `self`)."""
    k, out = 2, name
    while out in taken or out == "self":
        out, k = f"{name}{k}", k + 1
    return out


def value_name(step: str) -> str:
    """The fx value name of a step: `downsample.0` -> `downsample_0`; never `self`, `x` or a keyword."""
    name = step.replace(".", "_")
    return f"{name}_" if keyword.iskeyword(name) or name in _FX_TAKEN else name


def join(prefix: str, name: str) -> str:
    """A dotted path: `join("downsample", "0")` -> `downsample.0`; `join("", "conv1")` -> `conv1`."""
    return f"{prefix}.{name}" if prefix else str(name)


def free_name(base: str, taken: Callable[[str], bool]) -> str:
    """`base`, else `base1`, `base2`, ...: the first for which `taken` is false (layer names in a scope)."""
    n = 0
    while True:
        name = base if n == 0 else f"{base}{n}"
        if not taken(name):
            return name
        n += 1


# A list index as a user writes it in a key (`stages.2`, `--set stages.-1.repeat=2`, `features: [stages.1]`):
# ASCII digits only (`str.isdigit` takes `²`, which `int` refuses) and few enough that `int` is cheap and
# Python's 4,300-digit conversion limit is never met.
_INDEX = re.compile(r"-?[0-9]{1,18}")


def parse_index(text: str, negative: bool = False) -> int | None:
    """`text` as an index (`"2"` -> 2; `"-1"` -> -1 when `negative`), None when it is no index (a name)."""
    if not isinstance(text, str) or not _INDEX.fullmatch(text) or (text.startswith("-") and not negative):
        return None
    return int(text)

