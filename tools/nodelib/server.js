#!/usr/bin/env node
/*
 * A second, independent LwM2M server for the emulator's tests: lwm2m-node-lib 1.4.0 (Telefonica's
 * Node.js LwM2M library, in-memory device registry) with a control channel of newline-delimited
 * JSON on stdin/stdout.
 *
 *   node server.js [--port N] [--host 127.0.0.1] [--accept FORMAT] [--log-level FATAL|ERROR|INFO|DEBUG]
 *
 * --port 0 (the default) picks a free UDP port on the host. The library itself binds to every
 * address (it calls socket.bind(port) with no address); this script makes every UDP socket it opens
 * (the server's and the library's per-request agents) bind to --host only, without SO_REUSEADDR.
 * --accept sets the library's `defaultAcceptFormat` (the Accept option of Read/Observe; by default
 * the library sends none). Writes go out with content-format 1541 ("lightweightm2m/text"), the
 * library's default.
 *
 * Every line this script writes on stdout is one JSON object; the library's own log goes to stderr.
 *
 * Requests (stdin), each with an optional "id" echoed in the answer:
 *   {"id":1,"op":"devices"}                                  -> result: [device, ...]
 *   {"id":2,"op":"device","ep":"E"}                          -> result: device (or error DeviceNotFound)
 *   {"id":3,"op":"read","ep":"E","o":3,"i":0,"r":0}          -> result: "Telit"  (payload as UTF-8 text)
 *   {"id":4,"op":"write","ep":"E","o":3,"i":0,"r":15,"value":"Europe/Rome"}   -> result: payload text
 *   {"id":5,"op":"execute","ep":"E","o":3,"i":0,"r":4,"value":""}             -> result: payload text
 *   {"id":6,"op":"discover","ep":"E","o":3,"i":0,"r":0}      -> result: link-format text
 *   {"id":7,"op":"writeAttributes","ep":"E","o":3303,"i":0,"r":5700,"attributes":{"pmin":0}}
 *   {"id":8,"op":"observe","ep":"E","o":3303,"i":0,"r":5700} -> result: first value; later values
 *                                                               arrive as "notification" events.
 *        The library answers only once a payload passed node-coap 0.22's ObserveReadStream, which
 *        drops a response whose Observe option is 0 (it keeps values > the last one, starting
 *        from 0): against a device whose first answer carries Observe 0, the answer is the first
 *        notification. The observation is listed by "observers" as soon as the device answered.
 *   {"id":9,"op":"cancel","ep":"E","o":3303,"i":0,"r":5700}  -> result: null
 *   {"id":10,"op":"observers"}                               -> result: [{id, resource, deviceId}]
 *   {"id":11,"op":"stop"}                                    -> stops the server, then exits 0
 * Answers: {"id":1,"ok":true,"result":...} or {"id":1,"ok":false,"error":{"name","message","code"}}.
 *
 * Events (stdout, no "id"):
 *   {"event":"ready","port":N,"address":"127.0.0.1","version":"1.4.0"}
 *   {"event":"registration","ep","lifetime","version","binding","payload","device"}
 *   {"event":"update","ep","payload","device"}
 *   {"event":"unregistration","ep","device"}     (also when the library expires a lifetime)
 *   {"event":"notification","ep","deviceId","path":"/o/i/r","value"}   (the value that answers an
 *        observe request is reported too, with "initial":true, just before the answer)
 *   {"event":"error","message"}                  (a request line that is not JSON, etc.)
 * Closing stdin (or SIGTERM/SIGINT) stops the server and exits.
 */
'use strict';

const dgram = require('dgram');
const readline = require('readline');

function parseArgs(argv) {
    const opts = {port: 0, host: '127.0.0.1', accept: null, logLevel: 'FATAL'};
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length) {
                throw new Error('missing value for ' + a);
            }
            return argv[++i];
        };
        if (a === '--port') {
            opts.port = Number(next());
        } else if (a === '--host') {
            opts.host = next();
        } else if (a === '--accept') {
            opts.accept = next();
        } else if (a === '--log-level') {
            opts.logLevel = next();
        } else {
            throw new Error('unknown argument ' + a);
        }
    }
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
        throw new Error('bad --port');
    }
    return opts;
}

const opts = parseArgs(process.argv);

// ---------------------------------------------------------------------------------------------
// Every UDP socket binds to opts.host only and without SO_REUSEADDR (node-coap asks for reuseAddr,
// which would let two servers share a port silently).
const realCreateSocket = dgram.createSocket;
dgram.createSocket = function (type, listener) {
    if (type && typeof type === 'object') {
        type = Object.assign({}, type, {reuseAddr: false});
    }
    const sock = realCreateSocket.call(dgram, type, listener);
    const realBind = sock.bind;
    sock.bind = function (...args) {
        if (args.length > 0 && args[0] && typeof args[0] === 'object') {
            args[0] = Object.assign({}, args[0]);
            if (!args[0].address) {
                args[0].address = opts.host;
            }
            return realBind.apply(sock, args);
        }
        const port = typeof args[0] === 'function' ? 0 : (args[0] || 0);
        const cb = args.find((a) => typeof a === 'function');
        const addr = typeof args[1] === 'string' && args[1] ? args[1] : opts.host;
        return cb ? realBind.call(sock, port, addr, cb) : realBind.call(sock, port, addr);
    };
    return sock;
};

const logger = require('logops');
logger.setStream(process.stderr);          // stdout is the control channel
const lwm2m = require('lwm2m-node-lib');
const server = lwm2m.server;
const libVersion = require('lwm2m-node-lib/package.json').version;

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

function errorObject(error) {
    if (!error) {
        return {name: 'Error', message: 'unknown error'};
    }
    return {
        name: error.name || 'Error',
        message: error.message || String(error),
        code: error.code === undefined ? null : error.code
    };
}

function deviceView(device) {
    if (!device) {
        return null;
    }
    return {
        id: device.id,
        name: device.name,
        lifetime: device.lifetime,
        address: device.address,
        port: device.port,
        path: device.path,
        type: device.type,
        creationDate: device.creationDate
    };
}

let serverInfo = null;
let stopping = false;
const observed = {};                       // observer id -> {ep, deviceId, path}

function withDevice(ep, cb, fn) {
    server.getDevice(ep, (error, device) => {
        if (error) {
            cb(error);
        } else {
            fn(device);
        }
    });
}

function pathOf(msg) {
    return '/' + msg.o + '/' + msg.i + '/' + msg.r;
}

const ops = {
    devices(msg, cb) {
        server.listDevices((error, list) => cb(error, (list || []).map(deviceView)));
    },
    device(msg, cb) {
        server.getDevice(msg.ep, (error, device) => cb(error, deviceView(device)));
    },
    read(msg, cb) {
        withDevice(msg.ep, cb, (d) => server.read(d.id, msg.o, msg.i, msg.r, cb));
    },
    write(msg, cb) {
        withDevice(msg.ep, cb, (d) => server.write(d.id, msg.o, msg.i, msg.r, String(msg.value), cb));
    },
    execute(msg, cb) {
        const value = msg.value === undefined || msg.value === null ? '' : String(msg.value);
        withDevice(msg.ep, cb, (d) => server.execute(d.id, msg.o, msg.i, msg.r, value, cb));
    },
    discover(msg, cb) {
        withDevice(msg.ep, cb, (d) => {
            if (msg.r !== undefined && msg.r !== null) {
                server.discover(d.id, msg.o, msg.i, msg.r, cb);
            } else if (msg.i !== undefined && msg.i !== null) {
                server.discover(d.id, msg.o, msg.i, cb);
            } else {
                server.discover(d.id, msg.o, cb);
            }
        });
    },
    writeAttributes(msg, cb) {
        withDevice(msg.ep, cb, (d) => server.writeAttributes(d.id, msg.o, msg.i, msg.r, msg.attributes || {}, cb));
    },
    observe(msg, cb) {
        withDevice(msg.ep, cb, (d) => {
            const id = server.buildObserverId(d.id, msg.o, msg.i, msg.r);
            observed[id] = {ep: d.name, deviceId: d.id, path: pathOf(msg)};
            server.observe(d.id, msg.o, msg.i, msg.r, (value, o, i, r, deviceId) => {
                emit({
                    event: 'notification',
                    ep: d.name,
                    deviceId: deviceId,
                    path: '/' + o + '/' + i + '/' + r,
                    value: value
                });
            }, (error, first) => {
                if (error) {
                    delete observed[id];
                } else {
                    // the library hands the first value to this callback only, never to the
                    // handler: report it as a notification too, so the event stream is complete
                    emit({event: 'notification', ep: d.name, deviceId: d.id, path: pathOf(msg),
                          value: first, initial: true});
                }
                cb(error, first);
            });
        });
    },
    cancel(msg, cb) {
        withDevice(msg.ep, cb, (d) => {
            const id = server.buildObserverId(d.id, msg.o, msg.i, msg.r);
            delete observed[id];
            server.listObservers((error, list) => {
                if (error) {
                    return cb(error);
                }
                if (!list.some((s) => s.id === id)) {
                    return cb({name: 'ObserverNotFound', message: 'no observation ' + id, code: '4.04'});
                }
                try {
                    server.cancelObserver(d.id, msg.o, msg.i, msg.r, () => cb(null, null));
                } catch (e) {
                    cb(e);
                }
            });
        });
    },
    observers(msg, cb) {
        server.listObservers((error, list) => cb(error, (list || []).map((s) => ({
            id: s.id, resource: s.resource, deviceId: s.deviceId
        }))));
    },
    stop(msg, cb) {
        shutdown(0, () => cb(null, null));
    }
};

function handleLine(line) {
    line = line.trim();
    if (!line) {
        return;
    }
    let msg;
    try {
        msg = JSON.parse(line);
    } catch (e) {
        emit({event: 'error', message: 'not JSON: ' + line.slice(0, 200)});
        return;
    }
    const id = msg.id === undefined ? null : msg.id;
    const op = ops[msg.op];
    let answered = false;
    const cb = (error, result) => {
        if (answered) {
            return;                    // the library may call back twice on odd CoAP exchanges
        }
        answered = true;
        if (error) {
            emit({id: id, ok: false, error: errorObject(error)});
        } else {
            emit({id: id, ok: true, result: result === undefined ? null : result});
        }
    };
    if (!op) {
        cb({name: 'UnknownOperation', message: 'unknown op ' + msg.op});
        return;
    }
    if (!serverInfo && msg.op !== 'stop') {
        cb({name: 'NotRunning', message: 'the server is not running'});
        return;
    }
    try {
        op(msg, cb);
    } catch (e) {
        cb(e);
    }
}

function shutdown(code, done) {
    if (stopping) {
        if (done) {
            done();
        }
        return;
    }
    stopping = true;
    const finish = () => {
        if (done) {
            done();
        }
        // let stdout drain, then leave (the library keeps timers and agent sockets alive)
        process.stdout.write('', () => process.exit(code));
    };
    if (!serverInfo) {
        finish();
        return;
    }
    try {
        server.getRegistry().stopLifetimeCheck();
        server.stop(serverInfo, () => finish());
    } catch (e) {
        finish();
    }
    setTimeout(finish, 2000).unref();
}

function pickPort(callback) {
    if (opts.port) {
        return callback(null, opts.port);
    }
    const probe = realCreateSocket.call(dgram, {type: 'udp4', reuseAddr: false});
    probe.on('error', callback);
    probe.bind(0, opts.host, () => {
        const port = probe.address().port;
        probe.close(() => callback(null, port));
    });
}

function start() {
    pickPort((error, port) => {
        if (error) {
            emit({event: 'fatal', message: 'no free port: ' + error.message});
            process.exit(2);
        }
        const config = {
            port: port,
            udpWindow: 100,
            defaultType: 'Device',
            logLevel: opts.logLevel,
            ipProtocol: 'udp4',
            serverProtocol: 'udp4',
            lifetimeCheckInterval: 1000,
            deviceRegistry: {type: 'memory'}
        };
        if (opts.accept) {
            config.defaultAcceptFormat = opts.accept;
        }
        server.start(config, (error, info) => {
            if (error) {
                emit({event: 'fatal', message: 'start failed: ' + (error.message || error)});
                process.exit(2);
            }
            serverInfo = info;
            server.setHandler(info, 'registration', (ep, lifetime, version, binding, payload, cb) => {
                server.getDevice(ep, (e, device) => {
                    emit({
                        event: 'registration', ep: ep, lifetime: lifetime, version: version,
                        binding: binding, payload: payload, device: deviceView(device)
                    });
                    cb();
                });
            });
            server.setHandler(info, 'updateRegistration', (device, payload, cb) => {
                emit({event: 'update', ep: device.name, payload: payload, device: deviceView(device)});
                cb();
            });
            const onGone = (device, cb) => {
                for (const key of Object.keys(observed)) {
                    if (observed[key].deviceId === device.id) {
                        delete observed[key];
                    }
                }
                emit({event: 'unregistration', ep: device.name, device: deviceView(device)});
                cb();
            };
            server.setHandler(info, 'unregistration', onGone);
            // setHandler('unregistration') restarts the lifetime check with an undefined interval
            // (lwm2m-server.js reads config.lifetimeCheckInterval from the wrong object), which
            // makes it a 1 ms busy timer: restart it with a sane interval and the same handler.
            server.getRegistry().checkLifetime(config.lifetimeCheckInterval, onGone);
            const addr = info.server._sock.address();
            emit({event: 'ready', port: addr.port, address: addr.address, version: libVersion});
        });
    });
}

const rl = readline.createInterface({input: process.stdin, terminal: false});
rl.on('line', handleLine);
rl.on('close', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('uncaughtException', (e) => {
    emit({event: 'error', message: 'uncaught: ' + (e && e.stack || e)});
});

start();
