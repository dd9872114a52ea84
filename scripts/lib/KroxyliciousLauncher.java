/*
 * Starts a Kroxylicious proxy from a YAML configuration file, for benchmarking flotilla
 * against it (scripts/lib/kroxylicious.sh).
 *
 * Why this exists: Kroxylicious's application module (io.kroxylicious:kroxylicious-app,
 * which holds its main class) is not published to Maven Central, only the runtime
 * (io.kroxylicious:kroxylicious-runtime) is. This launcher does the minimum the app does:
 * parse the configuration with the runtime's public ConfigParser, build a KafkaProxy with
 * the default feature set, start it and block until the process is stopped (SIGTERM ends
 * the JVM, as with the app). No banner, no command-line options, no feature unlocking.
 *
 * Run as a single-file source program:
 *   java -cp "LIBS/*" scripts/lib/KroxyliciousLauncher.java CONFIG.yaml
 */

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.config.Configuration;
import io.kroxylicious.proxy.internal.config.Features;

public class KroxyliciousLauncher {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: KroxyliciousLauncher CONFIG.yaml");
            System.exit(2);
        }
        ConfigParser parser = new ConfigParser();
        Configuration config;
        try (InputStream in = Files.newInputStream(Path.of(args[0]))) {
            config = parser.parseConfiguration(in);
        }
        try (KafkaProxy proxy = new KafkaProxy(parser, config, Features.defaultFeatures())) {
            proxy.startup();
            System.err.println("kroxylicious-launcher: proxy started");
            proxy.block();
        }
    }
}
