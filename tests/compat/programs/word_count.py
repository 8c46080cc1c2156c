"""After Faust's examples/word_count.py: one agent splits posts into words and sends each word
to a second agent keyed by the word (so that a word always reaches the same partition); the
second counts words in a Table(default=int). Pages read a count where the table_route sends
them, the last count seen through a topic_route, and the whole table."""
from tests.compat.programs._flavor import make_app, name

app = make_app(store="rocksdb://", version=1, topic_partitions=8)

posts_topic = app.topic(name("posts"), value_type=str)
word_counts = app.Table("word_counts", default=int, help="Keep count of words (str to int).")
last_count: dict[str, int] = {}


@app.agent(posts_topic)
async def shuffle_words(posts):
    async for post in posts:
        for word in post.split():
            await count_words.send(key=word, value=word)


@app.agent(value_type=str)
async def count_words(words):
    async for word in words:
        word_counts[word] += 1
        last_count[word] = word_counts[word]


@app.page("/count/{word}/")
@app.table_route(table=word_counts, match_info="word")
async def get_count(web, request, word):
    return web.json({word: word_counts[word]})


@app.page("/last/{word}/")
@app.topic_route(topic=posts_topic, match_info="word")
async def get_last(web, request, word):
    return web.json({word: last_count.get(word)})


@app.page("/counts/")
async def all_counts(web, request):
    return web.json(dict(word_counts.items()))
