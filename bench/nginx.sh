# Sourced by bench/load.sh and bench/paired.sh: nginx as the plain reverse proxy both
# compare keygated with.

# nginx_conf DIR LISTEN_PORT UPSTREAM_PORT: writes DIR/nginx.conf. A plain reverse proxy
# as one would deploy it for speed: one worker, no access log, HTTP/1.1 with a pool of
# idle connections to the upstream on 127.0.0.1:UPSTREAM_PORT, and no per-connection
# request cap (its default closes every client connection after 1000 requests, which
# keygated never does). Temp paths are relative to the prefix (DIR), never /var/lib/nginx.
nginx_conf() {
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    keepalive_requests 1000000;
    upstream demo {
        server 127.0.0.1:$3;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

# nginx_worker MASTER_PID: prints the pid of the master's one worker (forked after it
# listens; CPU time is the worker's), waiting up to 5 s; fails if none appears.
nginx_worker() {
    local worker
    for _ in $(seq 100); do
        worker=$(pgrep -P "$1" | head -n1 || true)
        [ -n "$worker" ] && { echo "$worker"; return 0; }
        sleep 0.05
    done
    return 1
}
