"""Running sweeps: profiles, plan, sweep and its workers, results CSV, shards, merge,
benchmark (a whole `run`, for the CLI and the API), check (the correctness gate alone).

``structbench.run`` is both this package and the public ``run(...)`` function of the API
(structbench.api.run): calling the package calls it, so ``structbench.run(op=...)`` works
whether or not a submodule was imported first.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from structbench.api import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
