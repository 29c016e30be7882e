"""The per-module fields an expression reads (the README's "Rules" section), computed once per module.

:class:`ModuleFacts` holds the fields of every module of a model as columns. One walk of the module tree
records each module, its key in its parent (the leaf) and its parent; every other field follows from those
without splitting a name: the container is the parent's leaf, the depth the parent's plus one. Each column
is built on first use, so a rule that reads only ``container`` and ``index`` never builds names or counts
parameters.
"""

from __future__ import annotations

from functools import cached_property

from torch import nn

from ..torch_internals import own_parameters

_FSDP_PREFIX = "FSDP"


def class_name(module: nn.Module) -> str:
    """``type(module).__name__`` without the ``FSDP`` prefix that ``fully_shard`` adds to a module's class."""
    cls = type(module)
    name = cls.__name__
    if name.startswith(_FSDP_PREFIX) and any(base.__name__ == "FSDPModule" for base in cls.__mro__[1:]):
        return name[len(_FSDP_PREFIX):]
    return name


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits (what ``str.isdigit`` means for a module name)."""
    return text.isdigit() and text.isascii()


class ModuleFacts:
    """Fields of a list of modules, as columns indexed by position.

    For a model (:meth:`of_model`) positions follow ``named_modules()``: pre-order, each module once, the root
    at 0. For one module known by name (:meth:`of`) there is one position, 0.
    """

    def __init__(self, modules: list[nn.Module], leaves: list[str], parents: list[int] | None,
                 names: list[str] | None = None, containers: list[str] | None = None,
                 depths: list[int] | None = None) -> None:
        self.modules = modules
        self.leaves = leaves
        self.parents = parents
        self.size = len(modules)
        # given for a single named module; derived from parents for a model
        if names is not None:
            self.names = names
        if containers is not None:
            self.containers = containers
        if depths is not None:
            self.depths = depths

    @classmethod
    def of_model(cls, model: nn.Module) -> ModuleFacts:
        """Facts of every module of ``model``, in the order and with the de-duplication of ``named_modules()``."""
        try:
            facts = cls._walk(model, dedupe=False)
            if len(set(map(id, facts.modules))) == facts.size:
                return facts
        except RecursionError:  # a module that contains itself
            pass
        return cls._walk(model, dedupe=True)  # a module reachable twice is listed once, where first seen

    @classmethod
    def _walk(cls, model: nn.Module, dedupe: bool) -> ModuleFacts:
        modules, leaves, parents = [model], [""], [-1]
        add_module, add_leaf, add_parent = modules.append, leaves.append, parents.append
        seen = {id(model)}

        def visit(module: nn.Module, index: int) -> None:
            for key, child in module._modules.items():
                if child is None:
                    continue
                if dedupe:
                    if id(child) in seen:
                        continue
                    seen.add(id(child))
                position = len(modules)
                add_module(child)
                add_leaf(key)
                add_parent(index)
                if child._modules:
                    visit(child, position)

        visit(model, 0)
        return cls(modules, leaves, parents)

    @classmethod
    def of(cls, name: str, module: nn.Module) -> ModuleFacts:
        """Facts of one module known by its dotted name (the drop-in ``condition(name, module)`` case)."""
        if name:
            parts = name.rsplit(".", 2)
            leaf, container, depth = parts[-1], (parts[-2] if len(parts) >= 2 else ""), name.count(".") + 1
        else:
            leaf = container = ""
            depth = 0
        return cls([module], [leaf], None, names=[name], containers=[container], depths=[depth])

    # -- columns, built on first use ---------------------------------------------------------------

    @cached_property
    def names(self) -> list[str]:
        names = [""] * self.size
        leaves, parents = self.leaves, self.parents
        for i in range(1, self.size):  # a parent always comes before its children
            parent = parents[i]
            names[i] = f"{names[parent]}.{leaves[i]}" if parent else leaves[i]
        return names

    @cached_property
    def depths(self) -> list[int]:
        depths = [0] * self.size
        parents = self.parents
        for i in range(1, self.size):
            depths[i] = depths[parents[i]] + 1
        return depths

    @cached_property
    def containers(self) -> list[str]:
        leaves = self.leaves
        return [leaves[p] if p > 0 else "" for p in self.parents]

    @cached_property
    def indexes(self) -> list[int | None]:
        return [int(leaf) if is_digits(leaf) else None for leaf in self.leaves]

    @cached_property
    def rindexes(self) -> list[int | None]:
        """The index counted back from the container's last numbered entry (0 for the last, as ``blocks[-1]``); none
        for a leaf that is not a number, and for a module evaluated alone (:meth:`of`), whose siblings are unknown."""
        indexes, parents = self.indexes, self.parents
        if parents is None:
            return [None] * self.size
        last: dict[int, int] = {}
        for i in range(1, self.size):
            if indexes[i] is not None:
                last[parents[i]] = max(last.get(parents[i], 0), indexes[i])
        return [last[parents[i]] - indexes[i] if i and indexes[i] is not None else None for i in range(self.size)]

    @cached_property
    def class_names(self) -> list[str]:
        return [class_name(m) for m in self.modules]

    @cached_property
    def params(self) -> list[int]:
        """Parameters held by each module and its children, as ``module.parameters()`` counts them."""
        numel: dict[int, int] = {}
        held: dict[int, frozenset[int]] = {}

        def param_ids(module: nn.Module) -> frozenset[int]:
            key = id(module)
            if key not in held:
                held[key] = frozenset()  # a module that contains itself counts its own parameters once
                ids = set()
                for _, param in own_parameters(module):
                    ids.add(id(param))
                    numel[id(param)] = param.numel()
                for child in module._modules.values():
                    if child is not None:
                        ids |= param_ids(child)
                held[key] = frozenset(ids)
            return held[key]

        return [sum(numel[p] for p in param_ids(m)) for m in self.modules]

    @cached_property
    def numbered(self) -> list[int]:
        """Positions of the numbered entries of containers (``blocks.3``)."""
        return [i for i, leaf in enumerate(self.leaves) if i and is_digits(leaf)]

    @cached_property
    def all(self) -> frozenset[int]:
        return frozenset(range(self.size))

    def column(self, field: str) -> list:
        if field == "name":
            return self.names
        if field == "leaf":
            return self.leaves
        if field == "container":
            return self.containers
        if field == "depth":
            return self.depths
        if field == "index":
            return self.indexes
        if field == "rindex":
            return self.rindexes
        if field == "class":
            return self.class_names
        if field == "params":
            return self.params
        raise KeyError(field)

    def value(self, field: str, i: int):
        """One module's field; for the class, computed for that module alone unless the column exists."""
        if field == "class" and "class_names" not in self.__dict__:
            return class_name(self.modules[i])
        return self.column(field)[i]

    def name(self, i: int) -> str:
        """One module's dotted name, without building the whole column."""
        if "names" in self.__dict__:
            return self.names[i]
        parts = []
        while i > 0:
            parts.append(self.leaves[i])
            i = self.parents[i]
        return ".".join(reversed(parts))

    def owners(self, units) -> list[int]:
        """For each module, the position of the deepest unit among ``units`` that holds it (itself included);
        0, the root, for modules outside every unit."""
        owner = [0] * self.size
        parents = self.parents
        for i in range(1, self.size):  # a parent always comes before its children
            owner[i] = i if i in units else owner[parents[i]]
        return owner

    def children_of(self, positions) -> list[int]:
        positions = set(positions)
        return [i for i, parent in enumerate(self.parents) if parent in positions]
