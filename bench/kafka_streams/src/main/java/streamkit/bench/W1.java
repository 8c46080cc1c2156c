package streamkit.bench;

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
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * W1 on Kafka Streams: the sum of amount per key,
 * {@code builder.stream(topic).groupByKey().aggregate(() -> 0L, (k, v, agg) -> agg + v.amount)},
 * in a RocksDB store with its changelog (the defaults). The input is keyed by the key already,
 * so there is no repartition topic. After the commit covering the last event, the sums are
 * read through an interactive query (store.all()), and the last value per key is read back
 * from the store's changelog topic; both must equal expected.json.
 */
public final class W1 {
    /** The topology: the sum of amount per key of the topic, in the store "sums". */
    static StreamsBuilder topology(Case c) {
        Serde<Case.Event> events = Case.json(Case.Event.class);
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(c.topic, Consumed.with(Serdes.String(), events))
                .groupByKey(Grouped.with(Serdes.String(), events))
                .aggregate(() -> 0L, (key, event, sum) -> {
                    c.processed();
                    return sum + event.amount;
                }, Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("sums")
                        .withValueSerde(Serdes.Long()));
        return builder;
    }

    public static void main(String[] argv) throws Exception {
        Case c = new Case("w1-kafka-streams", argv);
        KafkaStreams streams = Case.streams(topology(c).build(), c.config());
        try (Admin admin = c.admin()) {
            double seconds = c.runUntilCommitted(streams, admin, List.of(c.topic), c.events);
            ReadOnlyKeyValueStore<String, Long> store = streams.store(
                    StoreQueryParameters.fromNameAndType("sums", QueryableStoreTypes.keyValueStore()));
            Map<String, Long> sums = new HashMap<>();
            try (KeyValueIterator<String, Long> it = store.all()) {
                while (it.hasNext()) {
                    KeyValue<String, Long> kv = it.next();
                    sums.put(kv.key, kv.value);
                }
            }
            c.checkExpected("sums", sums);
            Map<String, Long> changelog = new HashMap<>();
            for (ConsumerRecord<String, Long> r : c.readTopic(admin, c.applicationId + "-sums-changelog",
                    Serdes.String().deserializer(), Serdes.Long().deserializer())) {
                changelog.put(r.key(), r.value());
            }
            c.checkExpected("changelog sums", changelog);
            c.closeAndReport(streams, c.events, seconds, Map.of("keys", sums.size(),
                    "settings", "Kafka Streams defaults: RocksDB store with changelog, record "
                            + "cache, at-least-once; groupByKey().aggregate()"));
        }
    }
}
