
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Type;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Map.Entry;
import java.util.concurrent.Executors;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonDeserializationContext;
import com.google.gson.JsonDeserializer;
import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonPrimitive;
import com.google.gson.JsonSerializationContext;
import com.google.gson.JsonSerializer;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import org.eclipse.leshan.core.SecurityMode;
import org.eclipse.leshan.core.request.BootstrapDownlinkRequest;
import org.eclipse.leshan.core.request.BootstrapRequest;
import org.eclipse.leshan.core.request.ContentFormat;
import org.eclipse.leshan.core.request.Identity;
import org.eclipse.leshan.core.response.LwM2mResponse;
import org.eclipse.leshan.core.util.Hex;
import org.eclipse.leshan.server.bootstrap.BootstrapConfig;
import org.eclipse.leshan.server.bootstrap.BootstrapFailureCause;
import org.eclipse.leshan.server.bootstrap.BootstrapSession;
import org.eclipse.leshan.server.bootstrap.BootstrapSessionListener;
import org.eclipse.leshan.server.bootstrap.InMemoryBootstrapConfigStore;
import org.eclipse.leshan.server.californium.bootstrap.LeshanBootstrapServer;
import org.eclipse.leshan.server.californium.bootstrap.LeshanBootstrapServerBuilder;
import org.eclipse.leshan.server.security.BootstrapSecurityStore;
import org.eclipse.leshan.server.security.SecurityInfo;

/**
 * Minimal LwM2M bootstrap server (telit-emu test tooling) on the Leshan library, REST API:
 * GET /api/bootstrap, GET|POST|PUT|DELETE /api/bootstrap/{endpoint} (body: Leshan BootstrapConfig as JSON,
 * byte arrays as hex strings), GET /api/server, GET /api/events[?ep=EP].
 */
public class TelitEmuLeshanBsServer {
    static final InMemoryBootstrapConfigStore store = new InMemoryBootstrapConfigStore();
    static final List<Map<String, Object>> events = Collections.synchronizedList(new ArrayList<>());

    static class BytesAdapter implements JsonSerializer<byte[]>, JsonDeserializer<byte[]> {
        public JsonElement serialize(byte[] src, Type t, JsonSerializationContext c) {
            return new JsonPrimitive(Hex.encodeHexString(src));
        }

        public byte[] deserialize(JsonElement json, Type t, JsonDeserializationContext c) throws JsonParseException {
            if (json.isJsonPrimitive())
                return Hex.decodeHex(json.getAsString().toCharArray());
            if (json.isJsonArray()) {
                byte[] b = new byte[json.getAsJsonArray().size()];
                for (int i = 0; i < b.length; i++)
                    b[i] = (byte) json.getAsJsonArray().get(i).getAsInt();
                return b;
            }
            throw new JsonParseException("byte[] must be a hex string or an array of integers");
        }
    }

    static class ContentFormatAdapter implements JsonSerializer<ContentFormat>, JsonDeserializer<ContentFormat> {
        public JsonElement serialize(ContentFormat src, Type t, JsonSerializationContext c) {
            return new JsonPrimitive(src.getName());
        }

        public ContentFormat deserialize(JsonElement json, Type t, JsonDeserializationContext c) throws JsonParseException {
            JsonPrimitive p = json.getAsJsonPrimitive();
            if (p.isNumber())
                return ContentFormat.fromCode(p.getAsInt());
            ContentFormat f = ContentFormat.fromName(p.getAsString());
            if (f == null)
                throw new JsonParseException("unknown content format " + p.getAsString());
            return f;
        }
    }

    static final Gson gson = new GsonBuilder().registerTypeAdapter(byte[].class, new BytesAdapter())
            .registerTypeAdapter(ContentFormat.class, new ContentFormatAdapter()).create();

    static void event(String name, String endpoint, String detail) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("time", System.currentTimeMillis());
        e.put("event", name);
        e.put("endpoint", endpoint);
        if (detail != null)
            e.put("detail", detail);
        events.add(e);
        System.out.println("TELITEMU " + name + " " + endpoint + (detail != null ? " " + detail : ""));
        System.out.flush();
    }

    static List<SecurityInfo> pskInfos() {
        List<SecurityInfo> infos = new ArrayList<>();
        for (Entry<String, BootstrapConfig> e : store.getAll().entrySet()) {
            for (BootstrapConfig.ServerSecurity s : e.getValue().security.values()) {
                if (s.bootstrapServer && s.securityMode == SecurityMode.PSK && s.publicKeyOrId != null)
                    infos.add(SecurityInfo.newPreSharedKeyInfo(e.getKey(),
                            new String(s.publicKeyOrId, StandardCharsets.UTF_8), s.secretKey));
            }
        }
        return infos;
    }

    static void reply(HttpExchange ex, int code, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(code, b.length == 0 ? -1 : b.length);
        if (b.length > 0)
            try (OutputStream os = ex.getResponseBody()) {
                os.write(b);
            }
        ex.close();
    }

    static String body(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            in.transferTo(o);
            return o.toString(StandardCharsets.UTF_8);
        }
    }

    public static void main(String[] args) throws Exception {
        String lh = "127.0.0.1", slh = "127.0.0.1", wh = "127.0.0.1";
        int lp = 5783, slp = 5784, wp = 8081;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
            case "-lh": lh = args[++i]; break;
            case "-lp": lp = Integer.parseInt(args[++i]); break;
            case "-slh": slh = args[++i]; break;
            case "-slp": slp = Integer.parseInt(args[++i]); break;
            case "-wh": wh = args[++i]; break;
            case "-wp": wp = Integer.parseInt(args[++i]); break;
            case "-h": case "--help":
                System.out.println("usage: java -jar telit-emu-leshan-bsserver.jar [-lh host] [-lp coapPort]"
                        + " [-slh host] [-slp coapsPort (-1: none)] [-wh host] [-wp webPort]");
                return;
            default:
                System.err.println("unknown option " + args[i]);
                System.exit(2);
            }
        }
        BootstrapSecurityStore securityStore = new BootstrapSecurityStore() {
            public Iterator<SecurityInfo> getAllByEndpoint(String endpoint) {
                List<SecurityInfo> r = new ArrayList<>();
                for (SecurityInfo s : pskInfos())
                    if (s.getEndpoint().equals(endpoint))
                        r.add(s);
                return r.iterator();
            }

            public SecurityInfo getByIdentity(String identity) {
                for (SecurityInfo s : pskInfos())
                    if (s.getIdentity().equals(identity))
                        return s;
                return null;
            }
        };
        LeshanBootstrapServerBuilder builder = new LeshanBootstrapServerBuilder();
        builder.setLocalAddress(lh, lp);
        if (slp >= 0)
            builder.setLocalSecureAddress(slh, slp);
        else
            builder.disableSecuredEndpoint();
        builder.setConfigStore(store);
        builder.setSecurityStore(securityStore);
        final LeshanBootstrapServer server = builder.build();
        server.addListener(new BootstrapSessionListener() {
            public void sessionInitiated(BootstrapRequest r, Identity i) { event("INITIATED", r.getEndpointName(), String.valueOf(i)); }
            public void unAuthorized(BootstrapRequest r, Identity i) { event("UNAUTHORIZED", r.getEndpointName(), String.valueOf(i)); }
            public void authorized(BootstrapSession s) { event("AUTHORIZED", s.getEndpoint(), null); }
            public void noConfig(BootstrapSession s) { event("NOCONFIG", s.getEndpoint(), null); }
            public void sendRequest(BootstrapSession s, BootstrapDownlinkRequest<? extends LwM2mResponse> r) { event("SEND", s.getEndpoint(), String.valueOf(r)); }
            public void onResponseSuccess(BootstrapSession s, BootstrapDownlinkRequest<? extends LwM2mResponse> r, LwM2mResponse p) { event("RESPONSE", s.getEndpoint(), String.valueOf(p)); }
            public void onResponseError(BootstrapSession s, BootstrapDownlinkRequest<? extends LwM2mResponse> r, LwM2mResponse p) { event("RESPONSE_ERROR", s.getEndpoint(), String.valueOf(p)); }
            public void onRequestFailure(BootstrapSession s, BootstrapDownlinkRequest<? extends LwM2mResponse> r, Throwable t) { event("REQUEST_FAILURE", s.getEndpoint(), String.valueOf(t)); }
            public void end(BootstrapSession s) { event("FINISHED", s.getEndpoint(), null); }
            public void failed(BootstrapSession s, BootstrapFailureCause c) { event("FAILED", s.getEndpoint(), String.valueOf(c)); }
        });
        server.start();

        final HttpServer http = HttpServer.create(new InetSocketAddress(wh, wp), 50);
        http.setExecutor(Executors.newFixedThreadPool(4));
        http.createContext("/api/server", ex -> {
            InetSocketAddress u = server.getUnsecuredAddress(), s = server.getSecuredAddress();
            reply(ex, 200, "{\"unsecuredEndpointPort\":" + (u == null ? "null" : u.getPort())
                    + ",\"securedEndpointPort\":" + (s == null ? "null" : s.getPort()) + "}");
        });
        http.createContext("/api/events", ex -> {
            String q = ex.getRequestURI().getRawQuery();
            String ep = null;
            if (q != null)
                for (String kv : q.split("&"))
                    if (kv.startsWith("ep="))
                        ep = URLDecoder.decode(kv.substring(3), StandardCharsets.UTF_8);
            List<Map<String, Object>> r = new ArrayList<>();
            synchronized (events) {
                for (Map<String, Object> e : events)
                    if (ep == null || ep.equals(e.get("endpoint")))
                        r.add(e);
            }
            reply(ex, 200, gson.toJson(r));
        });
        http.createContext("/api/bootstrap", ex -> {
            try {
                String path = ex.getRequestURI().getPath().substring("/api/bootstrap".length());
                String ep = path.startsWith("/") ? URLDecoder.decode(path.substring(1), StandardCharsets.UTF_8) : "";
                String method = ex.getRequestMethod();
                if (method.equals("GET")) {
                    if (ep.isEmpty()) {
                        reply(ex, 200, gson.toJson(store.getAll()));
                    } else {
                        BootstrapConfig c = store.getAll().get(ep);
                        reply(ex, c == null ? 404 : 200, c == null ? "" : gson.toJson(c));
                    }
                } else if ((method.equals("POST") || method.equals("PUT")) && !ep.isEmpty()) {
                    BootstrapConfig c = gson.fromJson(body(ex), BootstrapConfig.class);
                    if (c == null) {
                        reply(ex, 400, "{\"error\":\"empty body\"}");
                        return;
                    }
                    store.add(ep, c);
                    reply(ex, 200, "");
                } else if (method.equals("DELETE") && !ep.isEmpty()) {
                    reply(ex, store.remove(ep) == null ? 404 : 200, "");
                } else {
                    reply(ex, 405, "");
                }
            } catch (Exception e) {
                reply(ex, 400, gson.toJson(Collections.singletonMap("error", String.valueOf(e))));
            }
        });
        http.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            http.stop(0);
            server.destroy();
        }));
        System.out.println("TELITEMU STARTED coap://" + lh + ":" + lp + " web http://" + wh + ":" + wp + "/");
        System.out.flush();
    }
}
