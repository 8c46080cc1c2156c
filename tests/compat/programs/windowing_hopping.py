"""After Faust's examples/windowing/hopping.py: hopping(10, 5), expires 10 minutes."""
from tests.compat.programs._windowing import build

app = build("hopping", (10, 5))
