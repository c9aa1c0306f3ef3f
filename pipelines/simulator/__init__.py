"""An embedded LangSmith simulator: the API endpoints over loopback, seeded data, switchable faults."""

from pipelines.simulator.server import Faults, Simulator
from pipelines.simulator.world import World, WorldConfig

__all__ = ["Faults", "Simulator", "World", "WorldConfig"]
