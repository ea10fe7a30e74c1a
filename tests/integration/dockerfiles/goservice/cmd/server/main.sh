echo "goservice $(cat /etc/goservice/VERSION) as $(id -un): $*"
