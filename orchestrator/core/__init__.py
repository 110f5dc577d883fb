"""The run: the ready-queue, one unit's plan and apply, previews, early plans, recovery, the engine, smoke checks, health."""
