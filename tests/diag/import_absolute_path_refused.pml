import "/etc/passwd"
