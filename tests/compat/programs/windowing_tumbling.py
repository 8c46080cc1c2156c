"""After Faust's examples/windowing/tumbling.py: tumbling(10), expires 10 minutes."""
from tests.compat.programs._windowing import build

app = build("tumbling", (10,))
