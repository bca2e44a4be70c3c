
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.eclipse.leshan.client.californium.LeshanClient;
import org.eclipse.leshan.client.californium.LeshanClientBuilder;
import org.eclipse.leshan.client.object.Device;
import org.eclipse.leshan.client.object.Security;
import org.eclipse.leshan.client.object.Server;
import org.eclipse.leshan.client.observer.LwM2mClientObserverAdapter;
import org.eclipse.leshan.client.resource.LwM2mObjectEnabler;
import org.eclipse.leshan.client.resource.ObjectsInitializer;
import org.eclipse.leshan.client.servers.ServerIdentity;
import org.eclipse.leshan.core.ResponseCode;
import org.eclipse.leshan.core.model.ObjectLoader;
import org.eclipse.leshan.core.model.StaticModel;
import org.eclipse.leshan.core.request.BootstrapRequest;
import org.eclipse.leshan.core.request.DeregisterRequest;
import org.eclipse.leshan.core.request.RegisterRequest;
import org.eclipse.leshan.core.request.UpdateRequest;
import org.eclipse.leshan.core.util.Hex;

/** Minimal LwM2M client (telit-emu test tooling) on the Leshan client library. */
public class TelitEmuLeshanClient {
    static void out(String s) {
        System.out.println("TELITEMU " + s);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String endpoint = "leshan-demo-client";
        String uri = "coap://127.0.0.1:5683";
        String localHost = "127.0.0.1";
        int localPort = 0;
        boolean bootstrap = false;
        String pskId = null;
        String pskKey = null;
        long lifetime = 300;
        int shortId = 123;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
            case "-n": endpoint = args[++i]; break;
            case "-u": uri = args[++i]; break;
            case "-lh": localHost = args[++i]; break;
            case "-lp": localPort = Integer.parseInt(args[++i]); break;
            case "-b": bootstrap = true; break;
            case "-i": pskId = args[++i]; break;
            case "-p": pskKey = args[++i]; break;
            case "-l": lifetime = Long.parseLong(args[++i]); break;
            case "-sid": shortId = Integer.parseInt(args[++i]); break;
            case "-h": case "--help":
                System.out.println("usage: java -jar telit-emu-leshan-client.jar [-n endpoint] [-u serverURI]"
                        + " [-lh localHost] [-lp localPort] [-b] [-i pskIdentity -p pskKeyHex] [-l lifetime]"
                        + " [-sid shortServerId]");
                return;
            default:
                System.err.println("unknown option " + args[i]);
                System.exit(2);
            }
        }
        ObjectsInitializer init = new ObjectsInitializer(new StaticModel(ObjectLoader.loadDefault()));
        byte[] id = pskId == null ? null : pskId.getBytes(StandardCharsets.UTF_8);
        byte[] key = pskKey == null ? null : Hex.decodeHex(pskKey.toCharArray());
        if (bootstrap) {
            init.setInstancesForObject(0, id != null ? Security.pskBootstrap(uri, id, key) : Security.noSecBootstap(uri));
            init.setClassForObject(1, Server.class);
        } else {
            init.setInstancesForObject(0, id != null ? Security.psk(uri, shortId, id, key) : Security.noSec(uri, shortId));
            init.setInstancesForObject(1, new Server(shortId, lifetime));
        }
        init.setInstancesForObject(3, new Device("Leshan Demo Device", "Model 500", "LT-500-000-0001"));
        List<LwM2mObjectEnabler> enablers = init.create(0, 1, 3);

        LeshanClientBuilder builder = new LeshanClientBuilder(endpoint);
        builder.setLocalAddress(localHost, localPort);
        builder.setObjects(enablers);
        final LeshanClient client = builder.build();
        client.addObserver(new LwM2mClientObserverAdapter() {
            @Override
            public void onBootstrapSuccess(ServerIdentity s, BootstrapRequest r) { out("BOOTSTRAPPED"); }
            @Override
            public void onBootstrapFailure(ServerIdentity s, BootstrapRequest r, ResponseCode c, String m, Exception e) {
                out("BOOTSTRAP_FAILED " + c + " " + m);
            }
            @Override
            public void onBootstrapTimeout(ServerIdentity s, BootstrapRequest r) { out("BOOTSTRAP_TIMEOUT"); }
            @Override
            public void onRegistrationSuccess(ServerIdentity s, RegisterRequest r, String regId) { out("REGISTERED " + regId); }
            @Override
            public void onRegistrationFailure(ServerIdentity s, RegisterRequest r, ResponseCode c, String m, Exception e) {
                out("REGISTRATION_FAILED " + c + " " + m);
            }
            @Override
            public void onRegistrationTimeout(ServerIdentity s, RegisterRequest r) { out("REGISTRATION_TIMEOUT"); }
            @Override
            public void onUpdateSuccess(ServerIdentity s, UpdateRequest r) { out("UPDATED"); }
            @Override
            public void onDeregistrationSuccess(ServerIdentity s, DeregisterRequest r) { out("DEREGISTERED"); }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> client.destroy(true)));
        client.start();
        out("STARTED " + endpoint);
    }
}
