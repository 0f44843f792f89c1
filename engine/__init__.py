"""sdflow's engine: typed nodes over a DAG, validated, cached and executed. No Stable Diffusion here.

Node packs and plugins import what they need from this module only.
"""

from engine.context import Interrupted, NodeContext, Services
from engine.definition import ExecutionBlocker, NodeResult
from engine.errors import NodeInputError
from engine.native import Input, Node, Output, Socket, node
from engine.spec import MAX_RESOLUTION, InputSpec, NodeSpec, OutputSpec
from engine.types import IMAGE, MASK, Image, Mask

__all__ = [
    "IMAGE",
    "MASK",
    "MAX_RESOLUTION",
    "ExecutionBlocker",
    "Image",
    "Input",
    "InputSpec",
    "Interrupted",
    "Mask",
    "Node",
    "NodeContext",
    "NodeInputError",
    "NodeResult",
    "NodeSpec",
    "Output",
    "OutputSpec",
    "Services",
    "Socket",
    "node",
]
