#!/bin/sh
set -e
echo "$1 on port $PORT as $(id -un) in $(pwd): $(ls vendor | tr "\n" " ")"
