import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.eclipse.californium.core.network.config.NetworkConfig;
import org.eclipse.leshan.client.californium.LeshanClient;
import org.eclipse.leshan.client.californium.LeshanClientBuilder;
import org.eclipse.leshan.client.object.Device;
import org.eclipse.leshan.client.object.Security;
import org.eclipse.leshan.client.object.Server;
import org.eclipse.leshan.client.observer.LwM2mClientObserverAdapter;
import org.eclipse.leshan.client.resource.ObjectsInitializer;
import org.eclipse.leshan.client.servers.ServerIdentity;
import org.eclipse.leshan.core.ResponseCode;
import org.eclipse.leshan.core.model.LwM2mModel;
import org.eclipse.leshan.core.model.ObjectLoader;
import org.eclipse.leshan.core.model.StaticModel;
import org.eclipse.leshan.core.request.RegisterRequest;

/**
 * A fleet of Leshan-library LwM2M clients in one JVM (telit-emu benchmark baseline, tools/bench_fleet.py).
 *
 * Each client is a full LeshanClient (Security, Server, Device objects; its own UDP endpoint on
 * 127.0.0.1, its own executor as Leshan builds it, CoAP stages of one thread each), all sharing one model. Prints "READY" once the JVM is up,
 * waits for a line on stdin, starts the clients (all at once, or R per second with -r R), prints
 * "REGISTERED index ms" as each registers (ms from its start), then one JSON line
 * {"count":..,"started":..,"registered":..,"failed":..,"elapsed_s":..,"p50_ms":..,"p99_ms":..,"error":..}
 * once all registered or -t seconds passed; then waits for stdin to close and destroys the clients.
 */
public class TelitEmuLeshanFleet {
    static synchronized void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        int count = 1000;
        String uri = "coap://127.0.0.1:5683";
        String prefix = "leshan-fleet-";
        double ramp = 0;                  // clients per second; 0 = burst
        long lifetime = 86400;
        double timeout = 60;
        int threads = 0;                  // > 0: one shared executor of that many threads (it must exceed the
                                          // registrations in flight: the engine blocks a thread on each)
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
            case "-n": count = Integer.parseInt(args[++i]); break;
            case "-u": uri = args[++i]; break;
            case "-e": prefix = args[++i]; break;
            case "-r": ramp = Double.parseDouble(args[++i]); break;
            case "-l": lifetime = Long.parseLong(args[++i]); break;
            case "-t": timeout = Double.parseDouble(args[++i]); break;
            case "-x": threads = Integer.parseInt(args[++i]); break;
            default:
                System.err.println("usage: -n count -u serverURI -e endpointPrefix [-r perSecond] [-l lifetime]"
                        + " [-t timeoutSeconds] [-x sharedThreads]");
                System.exit(2);
            }
        }
        // Per-client INFO logging would weigh on the fleet (the emulator logs nothing per registration).
        ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME))
                .setLevel(ch.qos.logback.classic.Level.WARN);
        LwM2mModel model = new StaticModel(ObjectLoader.loadDefault());
        ScheduledExecutorService shared = threads > 0 ? Executors.newScheduledThreadPool(threads) : null;
        NetworkConfig coap = LeshanClientBuilder.createDefaultNetworkConfig();
        coap.setInt(NetworkConfig.Keys.NETWORK_STAGE_RECEIVER_THREAD_COUNT, 1);
        coap.setInt(NetworkConfig.Keys.NETWORK_STAGE_SENDER_THREAD_COUNT, 1);
        coap.setInt(NetworkConfig.Keys.PROTOCOL_STAGE_THREAD_COUNT, 1);
        final long[] started = new long[count];
        final double[] took = new double[count];
        Arrays.fill(took, -1);
        final AtomicInteger registered = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final CountDownLatch all = new CountDownLatch(count);
        final List<LeshanClient> clients = new ArrayList<>();
        String error = null;

        out("READY");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        in.readLine();
        long t0 = System.nanoTime();
        int launched = 0;
        try {
            for (int i = 0; i < count; i++) {
                if (ramp > 0) {
                    long due = t0 + (long) (i / ramp * 1e9);
                    long wait = due - System.nanoTime();
                    if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
                }
                final int index = i;
                ObjectsInitializer init = new ObjectsInitializer(model);
                init.setInstancesForObject(0, Security.noSec(uri, 123));
                init.setInstancesForObject(1, new Server(123, lifetime));
                init.setInstancesForObject(3, new Device("Leshan Demo Device", "Model 500", "LT-500-" + i));
                LeshanClientBuilder builder = new LeshanClientBuilder(prefix + i);
                builder.setLocalAddress("127.0.0.1", 0);
                builder.setObjects(init.create(0, 1, 3));
                builder.setCoapConfig(coap);
                if (shared != null) builder.setSharedExecutor(shared);
                LeshanClient client = builder.build();
                client.addObserver(new LwM2mClientObserverAdapter() {
                    @Override
                    public void onRegistrationSuccess(ServerIdentity s, RegisterRequest r, String regId) {
                        if (took[index] < 0) {
                            took[index] = (System.nanoTime() - started[index]) / 1e6;
                            registered.incrementAndGet();
                            out("REGISTERED " + index + " " + String.format("%.1f", took[index]));
                            all.countDown();
                        }
                    }
                    @Override
                    public void onRegistrationFailure(ServerIdentity s, RegisterRequest r, ResponseCode c, String m,
                            Exception e) {
                        failed.incrementAndGet();
                    }
                    @Override
                    public void onRegistrationTimeout(ServerIdentity s, RegisterRequest r) {
                        failed.incrementAndGet();
                    }
                });
                clients.add(client);
                started[i] = System.nanoTime();
                client.start();
                launched++;
            }
        } catch (Throwable e) {          // e.g. OutOfMemoryError: unable to create native thread
            error = e.toString();
        }
        long left = (long) (timeout * 1e9) - (System.nanoTime() - t0);
        if (left > 0) all.await(left, TimeUnit.NANOSECONDS);
        double elapsed = (System.nanoTime() - t0) / 1e9;
        double[] done = Arrays.stream(took).filter(x -> x >= 0).sorted().toArray();
        double p50 = done.length > 0 ? done[Math.min(done.length - 1, (int) Math.round(0.50 * (done.length - 1)))] : -1;
        double p99 = done.length > 0 ? done[Math.min(done.length - 1, (int) Math.round(0.99 * (done.length - 1)))] : -1;
        out(String.format("{\"count\": %d, \"started\": %d, \"registered\": %d, \"failed_attempts\": %d, "
                + "\"elapsed_s\": %.3f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, \"threads\": %d, \"error\": %s}",
                count, launched, registered.get(), failed.get(), elapsed, p50, p99, Thread.activeCount(),
                error == null ? "null" : "\"" + error.replace("\"", "'") + "\""));
        while (in.readLine() != null) { }
        for (LeshanClient c : clients) {
            try { c.destroy(false); } catch (Throwable e) { }
        }
        if (shared != null) shared.shutdownNow();
        System.exit(0);
    }
}
