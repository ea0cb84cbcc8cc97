"""Process-level hook harness: run charm hooks as Juju does, with fake hook tools."""

from .hooks import HookResult, HookState, RelationState, ToolCall, run_action, run_hook

__all__ = ["HookResult", "HookState", "RelationState", "ToolCall", "run_action", "run_hook"]
