"""City routing with street classes, traffic, one-way streets and per-vehicle restrictions."""

from hrm_envs.city.env import CityRoutingEnv
from hrm_envs.city.generator import VEHICLES, CityGenerator, CityPuzzle, RoadNetwork

__all__ = ["VEHICLES", "CityGenerator", "CityPuzzle", "CityRoutingEnv", "RoadNetwork"]
