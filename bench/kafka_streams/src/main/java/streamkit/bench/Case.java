package streamkit.bench;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;

/**
 * What the Kafka Streams cases share: the case command line (bench/cases/_common.py's
 * contract), the application's configuration, the JSON values, the clock and the result line.
 *
 * <p>Command line: --bootstrap HOST:PORT --topic T --events N --workdir DIR
 * [--commit-interval-ms MS] [--threads N] and the options of a main. The clock starts at the
 * first record the topology processes ({@link #processed}) and stops when the broker holds the
 * application's committed offsets past every input record (the input topics are written
 * before the case starts, from offset 0, so the committed offsets add up to the number of
 * input records), polled with the Admin client once every input record has been processed.
 * Kafka Streams commits after flushing its caches, its stores and its changelog records, so
 * that commit covers them. No end offset comes from ListOffsets, which the dev broker can get
 * wrong (bench/README.md).
 */
final class Case {
    static final ObjectMapper JSON = new ObjectMapper();

    final Map<String, String> options;
    final String bootstrap;
    final String topic;
    final long events;
    final Path workdir;
    final String applicationId;
    final LongAdder processed = new LongAdder();
    private final AtomicLong firstRecordNanos = new AtomicLong();
    /** Seconds from the first record until every input record had been processed. */
    double processedSeconds = Double.NaN;

    /** A W1/windows input value: {"key": "k1", "amount": 7, "ts": ...}; a join input: {"n": 1, "amount": 7}. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public static final class Event {
        public String key;
        public long amount;
        public long n;
    }

    Case(String prefix, String[] argv) {
        options = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
                throw usage("expected --name value pairs, got " + argv[i]);
            }
            options.put(argv[i].substring(2), argv[++i]);
        }
        bootstrap = required("bootstrap");
        topic = required("topic");
        events = Long.parseLong(required("events"));
        workdir = Path.of(required("workdir"));
        applicationId = prefix + "-" + UUID.randomUUID().toString().substring(0, 10);
    }

    private String required(String name) {
        String value = options.get(name);
        if (value == null) {
            throw usage("--" + name + " is required");
        }
        return value;
    }

    private static IllegalArgumentException usage(String message) {
        return new IllegalArgumentException(message + "; usage: --bootstrap HOST:PORT --topic T "
                + "--events N --workdir DIR [--commit-interval-ms MS] [--threads N] "
                + "[--guarantee at_least_once|exactly_once_v2]");
    }

    Integer commitIntervalMs() {
        String v = options.get("commit-interval-ms");
        return v == null ? null : Integer.valueOf(v);
    }

    int threads() {
        return Integer.parseInt(options.getOrDefault("threads", "1"));
    }

    String guarantee() {
        return options.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE);
    }

    /** The commit interval in effect: the given one, else Kafka Streams' default for the
     * guarantee (30 s at-least-once, 100 ms exactly-once). */
    int effectiveCommitIntervalMs() {
        if (commitIntervalMs() != null) {
            return commitIntervalMs();
        }
        return StreamsConfig.EXACTLY_ONCE_V2.equals(guarantee()) ? 100 : 30000;
    }

    /** The application's configuration: Kafka Streams' defaults (RocksDB stores with
     * changelogs, record caches, at-least-once, 30 s commit interval) but for the thread
     * count and, when given, the commit interval and the processing guarantee. */
    Properties config() {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, workdir.resolve("kafka-streams-state").toString());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee());
        if (commitIntervalMs() != null) {
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitIntervalMs());
        }
        return p;
    }

    /** Called by the topology for each input record it processes. */
    void processed() {
        if (firstRecordNanos.get() == 0) {
            firstRecordNanos.compareAndSet(0, System.nanoTime());
        }
        processed.increment();
    }

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    /** The partitions of the topics. */
    static List<TopicPartition> partitions(Admin admin, List<String> topics) throws Exception {
        Map<String, TopicDescription> described = admin.describeTopics(topics).allTopicNames().get();
        List<TopicPartition> out = new ArrayList<>();
        described.forEach((name, d) -> d.partitions().forEach(
                p -> out.add(new TopicPartition(name, p.partition()))));
        return out;
    }

    /** Every record of a topic, read from the beginning until no partition lags behind the
     * high watermark of the fetches. */
    <K, V> List<ConsumerRecord<K, V>> readTopic(Admin admin, String name, Deserializer<K> keys,
                                                 Deserializer<V> values) throws Exception {
        List<TopicPartition> tps = partitions(admin, List.of(name));
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<K, V>> out = new ArrayList<>();
        try (KafkaConsumer<K, V> consumer = new KafkaConsumer<>(p, keys, values)) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (tps.stream().anyMatch(tp -> consumer.currentLag(tp).orElse(1) > 0)) {
                if (System.nanoTime() > deadline) {
                    fail("could not read " + name + " to its end");
                }
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    /** Create a topic for the application's output (the broker does not create topics). */
    static void createTopic(Admin admin, String name, int partitions) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
    }

    /** Start the application, wait until it has processed the `expected` records of the
     * topics `inputs` and committed offsets past all of them; return the measured seconds. A
     * client that stops with an error fails the case. */
    double runUntilCommitted(KafkaStreams streams, Admin admin, List<String> inputs, long expected)
            throws Exception {
        List<TopicPartition> tps = partitions(admin, inputs);
        failOnThreadError(streams);
        streams.start();
        long nextPoll = 0;
        while (true) {
            KafkaStreams.State state = streams.state();
            if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.NOT_RUNNING) {
                fail("Kafka Streams stopped: " + state);
            }
            boolean all = processed.sum() >= expected;
            long now = System.nanoTime();
            if (all && Double.isNaN(processedSeconds)) {
                processedSeconds = (now - firstRecordNanos.get()) / 1e9;
            }
            // Until every record is processed, a poll every 200 ms only notices a topology
            // that dropped records; then one every 5 ms.
            if (now >= nextPoll) {
                if (committed(admin, tps) >= expected) {
                    if (firstRecordNanos.get() == 0) {
                        fail("committed the end offsets without processing a record");
                    }
                    return (System.nanoTime() - firstRecordNanos.get()) / 1e9;
                }
                nextPoll = now + (all ? 5_000_000L : 200_000_000L);
            }
            Thread.sleep(1);
        }
    }

    /** A stream thread that dies fails the case. */
    static void failOnThreadError(KafkaStreams streams) {
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            fail("stream thread failed: " + e);
            return null;
        });
    }

    /** The sum of the offsets the application committed on these partitions. */
    private long committed(Admin admin, List<TopicPartition> tps) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> got =
                admin.listConsumerGroupOffsets(applicationId).partitionsToOffsetAndMetadata().get();
        long sum = 0;
        for (TopicPartition tp : tps) {
            OffsetAndMetadata om = got.get(tp);
            sum += om == null ? 0 : om.offset();
        }
        return sum;
    }

    <T> T expected(Class<T> type) {
        try {
            return JSON.readValue(workdir.resolve("expected.json").toFile(), type);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Fail the case unless `actual` equals expected.json ({key: sum}). */
    void checkExpected(String what, Map<String, Long> actual) {
        @SuppressWarnings("unchecked")
        Map<String, Number> expected = expected(Map.class);
        String problem = compare(actual, expected);
        if (problem != null) {
            fail(what + " differ: " + problem);
        }
    }

    /** Null when actual equals expected, else what differs (as compare_sums in _common.py). */
    static String compare(Map<String, Long> actual, Map<String, ? extends Number> expected) {
        List<String> missing = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        expected.forEach((k, v) -> {
            Long got = actual.get(k);
            if (got == null) {
                missing.add(k);
            } else if (got != v.longValue()) {
                wrong.add("(" + k + ", " + got + ", " + v + ")");
            }
        });
        Set<String> extra = actual.keySet().stream().filter(k -> !expected.containsKey(k))
                .collect(Collectors.toSet());
        if (missing.isEmpty() && wrong.isEmpty() && extra.isEmpty()) {
            return null;
        }
        return actual.size() + " keys vs " + expected.size() + " expected; " + missing.size()
                + " missing (e.g. " + head(missing) + "), " + extra.size() + " unexpected (e.g. "
                + head(new ArrayList<>(extra)) + "), " + wrong.size() + " wrong (key, got, want: "
                + head(wrong) + ")";
    }

    private static List<String> head(List<String> xs) {
        return xs.subList(0, Math.min(3, xs.size()));
    }

    /** Peak RSS of this JVM (VmHWM), in MB. */
    static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.split("\\s+")[1]) / 1024.0;
                }
            }
        } catch (IOException e) {
            // not Linux
        }
        return Double.NaN;
    }

    /** Close the client, print the result line (the last line on stdout; stop_seconds is
     * the time the close took) and exit 0. */
    void closeAndReport(KafkaStreams streams, long events, double seconds, Map<String, Object> extra) {
        long t0 = System.nanoTime();
        streams.close(Duration.ofSeconds(60));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("stop_seconds", (System.nanoTime() - t0) / 1e9);
        r.put("eps", events / seconds);
        r.put("seconds", seconds);
        r.put("rss_mb", Math.round(peakRssMb() * 10) / 10.0);
        r.put("checked", true);
        r.put("events", events);
        r.put("group", applicationId);
        r.put("processed_seconds", processedSeconds);
        r.put("threads", threads());
        r.put("commit_interval_ms", effectiveCommitIntervalMs());
        r.put("guarantee", guarantee());
        r.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version")
                + " " + String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments()));
        r.put("max_heap_mb", Runtime.getRuntime().maxMemory() / (1024 * 1024));
        r.put("kafka_streams", org.apache.kafka.common.utils.internals.AppInfoParser.getVersion());
        r.putAll(extra);
        try {
            System.out.println(JSON.writeValueAsString(r));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        System.out.flush();
        System.exit(0);
    }

    static void fail(String message) {
        System.err.println("FAILED: " + message);
        System.err.flush();
        Runtime.getRuntime().halt(2);
    }

    /** A JSON serde of a Jackson-mapped class. */
    static <T> Serde<T> json(Class<T> type) {
        ObjectReader reader = JSON.readerFor(type);
        Serializer<T> ser = (topic, value) -> {
            try {
                return value == null ? null : JSON.writeValueAsBytes(value);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        Deserializer<T> de = (topic, bytes) -> {
            try {
                return bytes == null ? null : reader.readValue(bytes);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        return Serdes.serdeFrom(ser, de);
    }

    static KafkaStreams streams(Topology topology, Properties config) {
        return new KafkaStreams(topology, config);
    }
}
