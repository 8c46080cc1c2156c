"""After Faust's examples/advanced/rpc.py: an agent that yields replies, and asks another
agent for each (agent.ask inside an agent); a timer calls pow.join and pow.map once, and
mul.ask as the example's command does. What they returned is kept for a page."""
from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import RPC_ASK, RPC_VALUES

app = make_app(reply_create_topic=True, topic_partitions=4)
pow_topic = app.topic(name("RPC__pow"))
mul_topic = app.topic(name("RPC__mul"))
results: dict = {}


@app.agent(pow_topic)
async def pow(stream):
    async for value in stream:
        yield await mul.ask(value=value ** 2)


@app.agent(mul_topic)
async def mul(stream):
    async for value in stream:
        yield value * 100.0


@app.timer(interval=1.0)
async def _sender():
    if results:
        return
    results["started"] = True
    # join gives a list, in the order of the input.
    results["join"] = await pow.join(RPC_VALUES)
    # map gives the replies as they come.
    results["map"] = [value async for value in pow.map(RPC_VALUES)]
    results["ask"] = [await mul.ask(float(x)) for x in RPC_ASK]


@app.page("/results/")
async def get_results(web, request):
    return web.json(results)
