"""Generations on disk: write N+1, swap the runtime link, restart what changed, prune.

Layout and crash-safety argument: docs/spec/installer.md. One module per concept, with
the plan from ``core/plan.py`` as their common language:

- ``layout``: the tree, where each file goes in a generation, refused manifest paths;
- ``safepath``: file system steps that never follow a link planted where they write;
- ``generation``: writing ``.N.tmp``, publishing it as ``N``, reading one back;
- ``swap``: the live generation, the atomic swap, custom-path links, pruning;
- ``restarts``: unit requests and the pending record that survives a crash;
- ``tree``: the steps in order, under the lock (``install_tree``);
- ``host``: ``install`` (store + manifest -> files -> tree, audit, restarts);
- ``report``: what ``install`` prints.

The entry points are re-exported here.
"""

from aux_secrets.adapters.installer.host import InstallReport, install, trees
from aux_secrets.adapters.installer.layout import FileToWrite, Tree
from aux_secrets.adapters.installer.report import report_json, report_lines, report_warnings
from aux_secrets.adapters.installer.restarts import UnitRequester
from aux_secrets.adapters.installer.tree import TreeResult, install_tree

__all__ = [
    "FileToWrite",
    "InstallReport",
    "Tree",
    "TreeResult",
    "UnitRequester",
    "install",
    "install_tree",
    "report_json",
    "report_lines",
    "report_warnings",
    "trees",
]
