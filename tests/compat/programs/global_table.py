"""app.GlobalTable: an agent writes the latest setting per key (None deletes it) into a
global table, which a page reads whole. No topic_partitions option: the table's changelog
gets the App class's default partition count, which the page shows too."""
from tests.compat.programs._flavor import make_app, name

app = make_app()
settings_topic = app.topic(name("settings"), key_type=str, value_type=str)
settings = app.GlobalTable("settings", default=str)
handled = {"n": 0}


@app.agent(settings_topic)
async def update(stream):
    async for key, value in stream.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
        handled["n"] += 1


@app.page("/settings/")
async def get_settings(web, request):
    return web.json({"handled": handled["n"], "settings": dict(settings.items()),
                     "topic_partitions": app.conf.topic_partitions,
                     "missing": settings["no-such-key"]})
