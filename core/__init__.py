"""The service around the venues and strategies, in layers (each may import only those below it):
``core.app`` (composition root and CLI) > ``core.backtest`` > ``core.ops`` > ``core.trading`` >
``core.settings`` > ``core.runtime``. See docs/architecture.md.

The package itself exports nothing: each subpackage's ``__init__`` lists what it offers.
"""

__all__: list[str] = []
