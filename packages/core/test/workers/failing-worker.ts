const reason: string = 'worker refuses to start';
throw new Error(reason);
