"""A node written in sdflow's native style."""

from __future__ import annotations

import math

import torch

from engine import IMAGE, Image, Input, Node, NodeContext, Output, node


@node(display_name="Image Grid", category="example", outputs=[Output(IMAGE)])
class ImageGrid(Node):
    """Tile a batch of images into one image, row by row; empty cells stay black."""

    images: Image
    columns: int = Input(2, min=1, max=64, tooltip="images per row")

    def execute(self, ctx: NodeContext) -> torch.Tensor:
        count, height, width, channels = self.images.shape
        columns = min(self.columns, count)
        rows = math.ceil(count / columns)
        grid = self.images.new_zeros((1, rows * height, columns * width, channels))
        for index, image in enumerate(self.images):
            row, column = divmod(index, columns)
            grid[0, row * height : (row + 1) * height, column * width : (column + 1) * width] = image
        return grid
