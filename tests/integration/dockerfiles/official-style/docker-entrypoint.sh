#!/bin/sh
set -e
# as the official images do: the server runs as its own user, anything else as asked
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    exec su redis -s /bin/sh -c "echo \"\$(id -un) runs $* in \$(pwd), log \$(readlink /var/log/redis/redis.log)\""
fi
exec "$@"
