package streamkit.bench;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;

/**
 * The stream-stream join benchmark on Kafka Streams: an inner join of {@code <topic>-left} and
 * {@code <topic>-right} ({"n": i, "amount": 1..9} by key) within --window-ms (default 5 s)
 * before and after, grace --grace-ms (default 1 s), over the record timestamps,
 * {@code left.join(right, joiner, JoinWindows.ofTimeDifferenceAndGrace(window, grace))} with
 * its RocksDB window stores and their changelogs, written to {@code <topic>-out} (created
 * here, 4 partitions). --events is the number of records per side.
 *
 * <p>The pairs the join emits are counted and must equal expected.json's "pairs".
 */
public final class Join {
    /** A joined pair: the two records' n and the sum of their amounts. */
    public static final class Pair {
        public final long l;
        public final long r;
        public final long amount;

        Pair(long l, long r, long amount) {
            this.l = l;
            this.r = r;
            this.amount = amount;
        }
    }

    public static void main(String[] argv) throws Exception {
        Case c = new Case("sjoin-kafka-streams", argv);
        long windowMs = Long.parseLong(c.options.getOrDefault("window-ms", "5000"));
        long graceMs = Long.parseLong(c.options.getOrDefault("grace-ms", "1000"));
        String left = c.topic + "-left";
        String right = c.topic + "-right";
        String out = c.topic + "-out";
        Serde<Case.Event> events = Case.json(Case.Event.class);
        LongAdder pairs = new LongAdder();

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, Case.Event> lefts = builder.stream(left, Consumed.with(Serdes.String(), events))
                .peek((k, v) -> c.processed());
        KStream<String, Case.Event> rights = builder.stream(right, Consumed.with(Serdes.String(), events))
                .peek((k, v) -> c.processed());
        lefts.join(rights, (lv, rv) -> new Pair(lv.n, rv.n, lv.amount + rv.amount),
                        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(windowMs), Duration.ofMillis(graceMs)),
                        StreamJoined.with(Serdes.String(), events, events))
                .peek((k, v) -> pairs.increment())
                .to(out, Produced.with(Serdes.String(), Case.json(Pair.class)));

        KafkaStreams streams = Case.streams(builder.build(), c.config());
        try (Admin admin = c.admin()) {
            Case.createTopic(admin, out, 4);
            double seconds = c.runUntilCommitted(streams, admin, List.of(left, right), 2 * c.events);
            long expected = ((Number) c.expected(Map.class).get("pairs")).longValue();
            if (pairs.sum() != expected || c.processed.sum() != 2 * c.events) {
                Case.fail(pairs.sum() + " pairs joined, " + expected + " expected; "
                        + c.processed.sum() + " input records processed, " + 2 * c.events + " expected");
            }
            c.closeAndReport(streams, 2 * c.events, seconds, Map.of("pairs", pairs.sum(),
                    "pairs_per_s", pairs.sum() / seconds,
                    "settings", "Kafka Streams defaults: RocksDB window stores with changelogs, "
                            + "at-least-once; JoinWindows.ofTimeDifferenceAndGrace(" + windowMs + " ms, "
                            + graceMs + " ms), inner, to a topic"));
        }
    }
}
