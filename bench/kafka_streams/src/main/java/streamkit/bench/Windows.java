package streamkit.bench;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The windows benchmark on Kafka Streams: a tumbling sum of amount per key and window
 * (--size-ms, default 60 s, --grace-ms, default 5 s) over the record timestamps,
 * {@code groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(size, grace)).aggregate(...)}
 * in a RocksDB window store with its changelog, written to the topic {@code <topic>-sums}
 * (created here, 4 partitions). With {@code --final true} the table goes through
 * {@code suppress(Suppressed.untilWindowCloses(unbounded()))} first: one result per closed
 * window; otherwise each update the record cache lets through.
 *
 * <p>Checked against expected.json ({"key|window start": sum}): the last value per window
 * in the output topic, plus, with --final, the windows the store still holds that were not
 * emitted yet (read through an interactive query).
 */
public final class Windows {
    public static void main(String[] argv) throws Exception {
        Case c = new Case("win-kafka-streams", argv);
        long sizeMs = Long.parseLong(c.options.getOrDefault("size-ms", "60000"));
        long graceMs = Long.parseLong(c.options.getOrDefault("grace-ms", "5000"));
        boolean emitFinal = Boolean.parseBoolean(c.options.getOrDefault("final", "false"));
        String out = c.topic + "-sums";
        Serde<Case.Event> events = Case.json(Case.Event.class);
        Serde<Windowed<String>> windowed = WindowedSerdes.timeWindowedSerdeFrom(String.class, sizeMs);

        StreamsBuilder builder = new StreamsBuilder();
        KTable<Windowed<String>, Long> sums = builder
                .stream(c.topic, Consumed.with(Serdes.String(), events))
                .groupByKey(Grouped.with(Serdes.String(), events))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs)))
                .aggregate(() -> 0L, (key, event, sum) -> {
                    c.processed();
                    return sum + event.amount;
                }, Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("sums")
                        .withValueSerde(Serdes.Long()));
        if (emitFinal) {
            sums = sums.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()));
        }
        sums.toStream().to(out, Produced.with(windowed, Serdes.Long()));

        KafkaStreams streams = Case.streams(builder.build(), c.config());
        try (Admin admin = c.admin()) {
            Case.createTopic(admin, out, 4);
            double seconds = c.runUntilCommitted(streams, admin, List.of(c.topic), c.events);
            Map<String, Long> got = new HashMap<>();
            List<ConsumerRecord<Windowed<String>, Long>> emitted =
                    c.readTopic(admin, out, windowed.deserializer(), Serdes.Long().deserializer());
            for (ConsumerRecord<Windowed<String>, Long> r : emitted) {
                got.put(r.key().key() + "|" + r.key().window().start(), r.value());
            }
            int open = 0;
            if (emitFinal) {
                ReadOnlyWindowStore<String, Long> store = streams.store(
                        StoreQueryParameters.fromNameAndType("sums", QueryableStoreTypes.windowStore()));
                try (KeyValueIterator<Windowed<String>, Long> it = store.all()) {
                    while (it.hasNext()) {
                        KeyValue<Windowed<String>, Long> kv = it.next();
                        if (got.putIfAbsent(kv.key.key() + "|" + kv.key.window().start(), kv.value) == null) {
                            open++;
                        }
                    }
                }
            }
            c.checkExpected("windows", got);
            c.closeAndReport(streams, c.events, seconds, Map.of("keys", got.size(),
                    "emitted", emitted.size(), "open_windows", open,
                    "settings", "Kafka Streams defaults: RocksDB window store with changelog, "
                            + "record cache, at-least-once; TimeWindows.ofSizeAndGrace(" + sizeMs
                            + " ms, " + graceMs + " ms)" + (emitFinal
                            ? ", suppress(untilWindowCloses(unbounded()))" : "") + ", to a topic"));
        }
    }
}
